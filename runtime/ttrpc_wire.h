// SPDX-License-Identifier: Apache-2.0
// ttrpc wire format for the agent channel (containerd/ttrpc PROTOCOL.md): a 10-byte header
// (u32 BE payload length, u32 BE stream id, u8 type: 1 request / 2 response, u8 flags) and a
// protobuf body: Request {1 service, 2 method, 3 payload, 4 timeout_nano, 5 metadata} or
// Response {1 status {1 code, 2 message}, 2 payload}. Client stream ids are odd and increasing;
// bodies are at most 4 MiB. Pure encode/decode plus blocking frame I/O on a stream fd.
// TODO(lead): fold into common/ttrpc once the Asio client/server there lands (#2).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "common/result.h"

namespace nv::runtime::ttrpc {

inline constexpr uint32_t kMaxMessage = 4u << 20;
inline constexpr uint8_t kTypeRequest = 1;
inline constexpr uint8_t kTypeResponse = 2;

struct Request {
  std::string service;
  std::string method;
  std::string payload;
  int64_t timeout_nano = 0;
};

struct Response {
  int code = 0;          // gRPC status code; 0 = OK
  std::string message;
  std::string payload;
};

struct Frame {
  uint32_t stream = 0;
  uint8_t type = 0;
  std::string body;
};

[[nodiscard]] std::string encodeRequest(const Request& request);
[[nodiscard]] Result<Request> decodeRequest(const std::string& body);
[[nodiscard]] std::string encodeResponse(const Response& response);
[[nodiscard]] Result<Response> decodeResponse(const std::string& body);

// Writes one frame (header + body) completely; safe for sockets (MSG_NOSIGNAL).
[[nodiscard]] Result<void> writeFrame(int fd, uint32_t stream, uint8_t type,
                                      const std::string& body);
// Reads one frame. Errc::kUnavailable at a clean EOF between frames; kProtocol for a
// truncated frame; kTooLarge for a length over 4 MiB (the connection must then be closed).
[[nodiscard]] Result<Frame> readFrame(int fd);

// The nv::Error for a non-OK gRPC status code, carrying the peer's message.
[[nodiscard]] Error statusToError(int code, const std::string& message);
// The gRPC status code for an nv::Error (inverse of statusToError where possible).
[[nodiscard]] int errorToStatus(const Error& error);

}  // namespace nv::runtime::ttrpc
