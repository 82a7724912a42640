// SPDX-License-Identifier: Apache-2.0
// Blocking ttrpc I/O and the message codec: hand-made bytes and real socket pairs.
#include "common/ttrpc/blocking.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include <gtest/gtest.h>

namespace nv::ttrpc {
namespace {

struct SocketPair {
  SocketPair() { EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0); }
  ~SocketPair() {
    for (int fd : fds) {
      if (fd >= 0) ::close(fd);
    }
  }
  void closeWriter() {
    ::close(fds[0]);
    fds[0] = -1;
  }
  int fds[2] = {-1, -1};
};

// Request{service "s", method "m", payload "p"}, as containerd's ttrpc encodes it.
TEST(Blocking, DecodesHandMadeRequestAndEncodesItBack) {
  const std::string body = std::string("\x0a\x01s\x12\x01m\x1a\x01p", 9);
  auto request = decodeRequest(body);
  ASSERT_TRUE(request);
  EXPECT_EQ(request->service, "s");
  EXPECT_EQ(request->method, "m");
  EXPECT_EQ(request->payload, "p");
  EXPECT_EQ(request->timeout_nano, 0);
  EXPECT_EQ(encodeRequest(*request), body);
}

TEST(Blocking, ResponseStatusRoundTrips) {
  auto decoded = decodeResponse(
      encodeResponse({.status = {StatusCode::kNotFound, "no such container"}, .payload = ""}));
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->status.code, StatusCode::kNotFound);
  EXPECT_EQ(decoded->status.message, "no such container");
  auto ok = decodeResponse(encodeResponse({.status = {}, .payload = "x"}));
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status.code, StatusCode::kOk);
  EXPECT_EQ(ok->payload, "x");
}

TEST(Blocking, GarbageBody_IsProtocolError) {
  auto request = decodeRequest(std::string("\x0a\xff\xff\xff\xff\x0f", 6));
  ASSERT_FALSE(request);
  EXPECT_TRUE(request.error().is(Errc::kProtocol));
  EXPECT_FALSE(decodeRequest(std::string("\x0a\x09s", 3)));  // says 9 bytes, has 1
  EXPECT_FALSE(decodeResponse(std::string("\x12\x05" "ab", 4)));
}

TEST(Blocking, FrameRoundTripsOverASocket) {
  SocketPair sp;
  ASSERT_TRUE(writeFrame(sp.fds[0], 7, MessageType::kResponse, "payload"));
  auto frame = readFrame(sp.fds[1]);
  ASSERT_TRUE(frame) << frame.error().message();
  EXPECT_EQ(frame->header.stream_id, 7u);
  EXPECT_EQ(frame->header.type, static_cast<uint8_t>(MessageType::kResponse));
  EXPECT_EQ(frame->payload, "payload");
  sp.closeWriter();
  auto eof = readFrame(sp.fds[1]);
  ASSERT_FALSE(eof);
  EXPECT_TRUE(eof.error().is(Errc::kUnavailable));
}

TEST(Blocking, PeerResetBetweenFrames_IsConnectionClosed) {
  SocketPair sp;
  // The peer closes with our data unread: our next read gets ECONNRESET, which between frames
  // means the same as EOF — it went away.
  ASSERT_TRUE(writeFrame(sp.fds[1], 1, MessageType::kRequest, "unread"));
  sp.closeWriter();
  auto gone = readFrame(sp.fds[1]);
  ASSERT_FALSE(gone);
  EXPECT_TRUE(gone.error().is(Errc::kUnavailable)) << gone.error().message();
}

TEST(Blocking, OversizedAndTruncatedFramesAreRefused) {
  SocketPair sp;
  const uint8_t oversized[10] = {0x00, 0x50, 0x00, 0x01, 0, 0, 0, 1, 1, 0};  // 5 MiB
  ASSERT_EQ(::write(sp.fds[0], oversized, sizeof(oversized)), 10);
  auto big = readFrame(sp.fds[1]);
  ASSERT_FALSE(big);
  EXPECT_TRUE(big.error().is(Errc::kTooLarge));
  EXPECT_NE(big.error().message().find("exceeds maximum message size"), std::string::npos);
  ASSERT_EQ(::write(sp.fds[0], oversized, 4), 4);
  sp.closeWriter();
  auto truncated = readFrame(sp.fds[1]);
  ASSERT_FALSE(truncated);
  EXPECT_TRUE(truncated.error().is(Errc::kProtocol));
  EXPECT_FALSE(writeFrame(sp.fds[1], 1, MessageType::kRequest, std::string(kMaxMessageLength + 1, 'x')));
}

TEST(Status, ErrnoErrors_MapToTheirGrpcCodes) {
  EXPECT_EQ(errorToStatus(Error::fromErrno(ENOENT, "x")).code, StatusCode::kNotFound);
  EXPECT_EQ(errorToStatus(Error::fromErrno(EBUSY, "x")).code, StatusCode::kFailedPrecondition);
  EXPECT_EQ(errorToStatus(Error::fromErrno(ESRCH, "x")).code, StatusCode::kFailedPrecondition);
  EXPECT_EQ(errorToStatus(Error::fromErrno(EACCES, "x")).code, StatusCode::kPermissionDenied);
  EXPECT_EQ(errorToStatus(Error::fromErrno(EINVAL, "x")).code, StatusCode::kInvalidArgument);
  EXPECT_EQ(errorToStatus(Error::fromErrno(ENOSPC, "x")).code, StatusCode::kResourceExhausted);
  EXPECT_EQ(errorToStatus(Error(Errc::kInternal, "x")).code, StatusCode::kInternal);
}

TEST(Status, RemoteStatus_PassesThroughAProxyUnchanged) {
  const Status out = errorToStatus(statusToError(9, "process has exited"));
  EXPECT_EQ(out.code, StatusCode::kFailedPrecondition);
  EXPECT_EQ(out.message, "process has exited");
}

}  // namespace
}  // namespace nv::ttrpc
