// SPDX-License-Identifier: Apache-2.0
// ttrpc frame codec: pure encode/decode of the 10-byte-header framing, no I/O.
//
// Protocol primer (ttrpc 1.1.1 as used by containerd 1.6; docs reference containerd-shim.md §2):
// every message is a 10-byte header followed by `length` data bytes, integers big-endian:
//   bytes 0-3 length (max 4 MiB) | 4-7 stream id | 8 type (1 request, 2 response) | 9 flags
// Client-initiated stream ids are odd (1, 3, 5, ...); a response carries its request's id.
// The data of a request is a ttrpc.Request protobuf, of a response a ttrpc.Response
// (common/ttrpc/ttrpc.proto). No handshake, no flow control, no ping.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace nv::ttrpc {

inline constexpr size_t kHeaderSize = 10;
inline constexpr uint32_t kMaxMessageLength = 4u << 20;  // 4 MiB, ttrpc's messageLengthMax

enum class MessageType : uint8_t { kRequest = 1, kResponse = 2 };

struct FrameHeader {
  uint32_t length = 0;
  uint32_t stream_id = 0;
  uint8_t type = 0;  // raw byte; see MessageType
  uint8_t flags = 0;
};

struct Frame {
  FrameHeader header;
  std::string payload;
};

// Encodes header + payload. Fails with kTooLarge when payload exceeds kMaxMessageLength.
[[nodiscard]] Result<std::string> encodeFrame(uint32_t stream_id, MessageType type,
                                              std::string_view payload);

// Parses the 10 header bytes (no validation).
[[nodiscard]] FrameHeader parseHeader(std::span<const uint8_t, kHeaderSize> bytes);

// Why a byte stream is not valid ttrpc. The header is filled when one was read.
struct FrameError {
  enum class Kind { kOversized, kUnknownType, kTruncated };
  Kind kind;
  FrameHeader header;
  size_t buffered = 0;  // kTruncated: bytes of the partial frame

  // One line, e.g. "message length 5000000 exceeds maximum message size of 4194304".
  [[nodiscard]] std::string message() const;
};

// Incremental decoder: feed() bytes as they arrive, then call next() until it returns nullopt.
// Buffers at most one partial frame plus what was fed. Errors are sticky: after an error the
// stream cannot be resynchronised and the connection must be closed.
class FrameDecoder {
 public:
  explicit FrameDecoder(uint32_t max_length = kMaxMessageLength) : max_length_(max_length) {}

  void feed(std::span<const uint8_t> bytes);

  // The next complete frame, nullopt when more bytes are needed, or the stream's error.
  [[nodiscard]] tl::expected<std::optional<Frame>, FrameError> next();

  // At EOF: an error when a partial frame (header or data) is buffered.
  [[nodiscard]] std::optional<FrameError> finish() const;

  [[nodiscard]] size_t buffered() const { return buf_.size() - pos_; }

 private:
  uint32_t max_length_;
  std::vector<uint8_t> buf_;
  size_t pos_ = 0;  // start of unconsumed bytes in buf_
  std::optional<FrameError> error_;
};

}  // namespace nv::ttrpc
