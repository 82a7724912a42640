// SPDX-License-Identifier: Apache-2.0
#include "common/ttrpc/blocking.h"

#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>


#include "common/syscall.h"
#include "common/ttrpc/ttrpc.pb.h"

namespace nv::ttrpc {
namespace {

// Reads until `out` is full; returns how many bytes arrived before EOF or an error.
size_t readFull(int fd, std::span<uint8_t> out, int* error) {
  size_t got = 0;
  while (got < out.size()) {
    const ssize_t n =
        retryOnEintr([&] { return ::read(fd, out.data() + got, out.size() - got); });
    if (n <= 0) {
      *error = n < 0 ? errno : 0;
      break;
    }
    got += static_cast<size_t>(n);
  }
  return got;
}

}  // namespace

std::string encodeRequest(const RequestMessage& request) {
  ::ttrpc::Request pb;
  pb.set_service(request.service);
  pb.set_method(request.method);
  pb.set_payload(request.payload);
  pb.set_timeout_nano(request.timeout_nano);
  return pb.SerializeAsString();
}

Result<RequestMessage> decodeRequest(std::string_view body) {
  ::ttrpc::Request pb;
  if (!pb.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
    return fail(Errc::kProtocol, "ttrpc: malformed request");
  }
  return RequestMessage{std::move(*pb.mutable_service()), std::move(*pb.mutable_method()),
                        std::move(*pb.mutable_payload()), pb.timeout_nano()};
}

std::string encodeResponse(const ResponseMessage& response) {
  ::ttrpc::Response pb;
  if (response.status.code != StatusCode::kOk) {
    pb.mutable_status()->set_code(static_cast<int32_t>(response.status.code));
    pb.mutable_status()->set_message(response.status.message);
  }
  pb.set_payload(response.payload);
  return pb.SerializeAsString();
}

Result<ResponseMessage> decodeResponse(std::string_view body) {
  ::ttrpc::Response pb;
  if (!pb.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
    return fail(Errc::kProtocol, "ttrpc: malformed response");
  }
  ResponseMessage out;
  out.status.code = static_cast<StatusCode>(pb.status().code());
  out.status.message = pb.status().message();
  out.payload = std::move(*pb.mutable_payload());
  return out;
}

Result<Frame> readFrame(int fd) {
  std::array<uint8_t, kHeaderSize> header{};
  int error = 0;
  const size_t got = readFull(fd, header, &error);
  // Between frames, EOF and a reset (the peer closed with our data unread, e.g. a VM being
  // torn down) both mean the peer went away.
  if (got == 0 && (error == 0 || error == ECONNRESET)) {
    return fail(Errc::kUnavailable, "ttrpc: connection closed");
  }
  if (got < header.size()) {
    return error != 0 ? failErrno(error, "ttrpc: read")
                      : fail(Errc::kProtocol, "ttrpc: truncated frame header");
  }
  Frame frame{parseHeader(header), {}};
  if (frame.header.length > kMaxMessageLength) {
    return fail(Errc::kTooLarge,
                FrameError{FrameError::Kind::kOversized, frame.header, 0}.message());
  }
  frame.payload.resize(frame.header.length);
  // Bounds: the span covers exactly the payload string's bytes.
  std::span<uint8_t> payload(reinterpret_cast<uint8_t*>(frame.payload.data()),
                             frame.payload.size());
  if (readFull(fd, payload, &error) < payload.size()) {
    return error != 0 ? failErrno(error, "ttrpc: read")
                      : fail(Errc::kProtocol, "ttrpc: truncated frame body");
  }
  return frame;
}

Result<void> writeFrame(int fd, uint32_t stream_id, MessageType type, std::string_view payload) {
  NV_ASSIGN_OR_RETURN(const std::string frame, encodeFrame(stream_id, type, payload));
  size_t sent = 0;
  while (sent < frame.size()) {
    ssize_t n = retryOnEintr(
        [&] { return ::send(fd, frame.data() + sent, frame.size() - sent, MSG_NOSIGNAL); });
    if (n < 0 && errno == ENOTSOCK) {
      n = retryOnEintr([&] { return ::write(fd, frame.data() + sent, frame.size() - sent); });
    }
    if (n <= 0) return failErrno("ttrpc: write");
    sent += static_cast<size_t>(n);
  }
  return {};
}

}  // namespace nv::ttrpc
