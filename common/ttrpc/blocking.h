// SPDX-License-Identifier: Apache-2.0
// Blocking ttrpc on a stream fd, for code that gives each connection a thread of its own: the
// guest agent's server and the runtime's agent channel and api.sock proxy. Same frames,
// messages, limits and status mapping as the Asio client and server (frame.h, status.h).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"
#include "common/ttrpc/frame.h"
#include "common/ttrpc/status.h"

namespace nv::ttrpc {

// A decoded ttrpc Request message (metadata is not used by these callers).
struct RequestMessage {
  std::string service;
  std::string method;
  std::string payload;
  int64_t timeout_nano = 0;  // 0: the client sent no deadline
};

// A decoded ttrpc Response message.
struct ResponseMessage {
  Status status;
  std::string payload;
};

[[nodiscard]] std::string encodeRequest(const RequestMessage& request);
// Errc::kProtocol when `body` is not a Request message.
[[nodiscard]] Result<RequestMessage> decodeRequest(std::string_view body);
[[nodiscard]] std::string encodeResponse(const ResponseMessage& response);
// Errc::kProtocol when `body` is not a Response message.
[[nodiscard]] Result<ResponseMessage> decodeResponse(std::string_view body);

// Reads one frame. Errc::kUnavailable when the peer went away between frames (EOF or
// ECONNRESET), kProtocol for a
// truncated frame, kTooLarge for a length over 4 MiB (close the connection then).
[[nodiscard]] Result<Frame> readFrame(int fd);
// Writes one frame completely: send(MSG_NOSIGNAL) on sockets, write() on character devices
// such as a virtio-serial port. kTooLarge for a payload over 4 MiB (nothing is written).
[[nodiscard]] Result<void> writeFrame(int fd, uint32_t stream_id, MessageType type,
                                      std::string_view payload);

}  // namespace nv::ttrpc
