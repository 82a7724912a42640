// SPDX-License-Identifier: Apache-2.0
// ttrpc frame codec (see frame.h for the protocol primer).
#include "common/ttrpc/frame.h"

#include <fmt/format.h>

#include <algorithm>

namespace nv::ttrpc {
namespace {

void putBe32(std::string& out, uint32_t v) {
  out.push_back(static_cast<char>((v >> 24) & 0xff));
  out.push_back(static_cast<char>((v >> 16) & 0xff));
  out.push_back(static_cast<char>((v >> 8) & 0xff));
  out.push_back(static_cast<char>(v & 0xff));
}

uint32_t getBe32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

}  // namespace

Result<std::string> encodeFrame(uint32_t stream_id, MessageType type, std::string_view payload) {
  if (payload.size() > kMaxMessageLength) {
    return fail(Errc::kTooLarge, fmt::format("message length {} exceeds maximum message size of {}",
                                             payload.size(), kMaxMessageLength));
  }
  std::string out;
  out.reserve(kHeaderSize + payload.size());
  putBe32(out, static_cast<uint32_t>(payload.size()));
  putBe32(out, stream_id);
  out.push_back(static_cast<char>(type));
  out.push_back('\0');
  out.append(payload);
  return out;
}

FrameHeader parseHeader(std::span<const uint8_t, kHeaderSize> bytes) {
  return FrameHeader{.length = getBe32(bytes.data()),
                     .stream_id = getBe32(bytes.data() + 4),
                     .type = bytes[8],
                     .flags = bytes[9]};
}

std::string FrameError::message() const {
  switch (kind) {
    case Kind::kOversized:
      return fmt::format("message length {} exceeds maximum message size of {} (stream {})",
                         header.length, kMaxMessageLength, header.stream_id);
    case Kind::kUnknownType:
      return fmt::format("unknown message type {} (stream {})", header.type, header.stream_id);
    case Kind::kTruncated:
      return fmt::format("connection closed inside a frame ({} bytes of a partial frame)",
                         buffered);
  }
  return "invalid frame";
}

void FrameDecoder::feed(std::span<const uint8_t> bytes) {
  if (error_) {
    return;
  }
  // Compact once the consumed prefix dominates, so the buffer stays one frame plus one feed.
  if (pos_ > 0 && pos_ >= buf_.size() / 2) {
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(pos_));
    pos_ = 0;
  }
  buf_.insert(buf_.end(), bytes.begin(), bytes.end());
}

tl::expected<std::optional<Frame>, FrameError> FrameDecoder::next() {
  if (error_) {
    return tl::unexpected(*error_);
  }
  if (buffered() < kHeaderSize) {
    return std::nullopt;
  }
  const FrameHeader header =
      parseHeader(std::span<const uint8_t, kHeaderSize>(buf_.data() + pos_, kHeaderSize));
  // Checked as soon as the header is in, before waiting for (or buffering) any data.
  if (header.length > max_length_) {
    error_ = FrameError{FrameError::Kind::kOversized, header};
    return tl::unexpected(*error_);
  }
  if (header.type != static_cast<uint8_t>(MessageType::kRequest) &&
      header.type != static_cast<uint8_t>(MessageType::kResponse)) {
    error_ = FrameError{FrameError::Kind::kUnknownType, header};
    return tl::unexpected(*error_);
  }
  // Bounds: header.length <= max_length_ (4 MiB), so the sum cannot overflow size_t.
  if (buffered() < kHeaderSize + header.length) {
    return std::nullopt;
  }
  const auto* data = reinterpret_cast<const char*>(buf_.data() + pos_ + kHeaderSize);
  Frame frame{header, std::string(data, header.length)};
  pos_ += kHeaderSize + header.length;
  if (pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  }
  return frame;
}

std::optional<FrameError> FrameDecoder::finish() const {
  if (error_) {
    return error_;
  }
  if (buffered() == 0) {
    return std::nullopt;
  }
  FrameError err{FrameError::Kind::kTruncated, {}, buffered()};
  if (buffered() >= kHeaderSize) {
    err.header =
        parseHeader(std::span<const uint8_t, kHeaderSize>(buf_.data() + pos_, kHeaderSize));
  }
  return err;
}

}  // namespace nv::ttrpc
