// SPDX-License-Identifier: Apache-2.0
// Frame codec and status mapping against hand-made bytes (docs reference containerd-shim.md §2).
#include "common/ttrpc/frame.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/ttrpc/status.h"
#include "common/ttrpc/ttrpc.pb.h"

namespace nv::ttrpc {
namespace {

std::span<const uint8_t> bytesOf(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// §2.4 worked example: Connect for task "f1", stream 1, as containerd 1.6 sends it.
std::string workedExampleFrame() {
  const std::string request = std::string("\x0a\x17", 2) + "containerd.task.v2.Task" +
                              std::string("\x12\x07", 2) + "Connect" +
                              std::string("\x1a\x04\x0a\x02\x66\x31", 6);
  return std::string("\x00\x00\x00\x28\x00\x00\x00\x01\x01\x00", 10) + request;
}

TEST(FrameDecoder, WorkedExample_DecodesConnectRequest) {
  FrameDecoder decoder;
  decoder.feed(bytesOf(workedExampleFrame()));
  auto frame = decoder.next();
  ASSERT_TRUE(frame.has_value());
  ASSERT_TRUE(frame->has_value());
  EXPECT_EQ((*frame)->header.length, 40u);  // 0x28
  EXPECT_EQ((*frame)->header.stream_id, 1u);
  EXPECT_EQ((*frame)->header.type, 1);
  ::ttrpc::Request request;
  ASSERT_TRUE(request.ParseFromString((*frame)->payload));
  EXPECT_EQ(request.service(), "containerd.task.v2.Task");
  EXPECT_EQ(request.method(), "Connect");
  EXPECT_EQ(request.payload(), std::string("\x0a\x02\x66\x31", 4));  // ConnectRequest{id="f1"}
  EXPECT_EQ(request.timeout_nano(), 0);
  EXPECT_EQ(decoder.buffered(), 0u);
}

TEST(FrameEncoder, WorkedExample_ProducesContainerdBytes) {
  ::ttrpc::Request request;
  request.set_service("containerd.task.v2.Task");
  request.set_method("Connect");
  request.set_payload(std::string("\x0a\x02\x66\x31", 4));
  auto frame = encodeFrame(1, MessageType::kRequest, request.SerializeAsString());
  ASSERT_TRUE(frame.has_value());
  EXPECT_EQ(*frame, workedExampleFrame());
}

TEST(FrameEncoder, EmptyPayload_HeaderOnly) {
  auto frame = encodeFrame(0x01020304, MessageType::kResponse, "");
  ASSERT_TRUE(frame.has_value());
  EXPECT_EQ(*frame, std::string("\x00\x00\x00\x00\x01\x02\x03\x04\x02\x00", 10));
}

TEST(FrameEncoder, OversizedPayload_ReturnsTooLarge) {
  const std::string big(kMaxMessageLength + 1, 'x');
  auto frame = encodeFrame(1, MessageType::kRequest, big);
  ASSERT_FALSE(frame.has_value());
  EXPECT_TRUE(frame.error().is(Errc::kTooLarge));
}

TEST(FrameDecoder, BytesFedOneAtATime_YieldTwoFrames) {
  const std::string wire = workedExampleFrame() + *encodeFrame(3, MessageType::kRequest, "ab");
  FrameDecoder decoder;
  std::vector<Frame> frames;
  for (char c : wire) {
    decoder.feed(bytesOf(std::string(1, c)));
    auto next = decoder.next();
    ASSERT_TRUE(next.has_value());
    if (next->has_value()) {
      frames.push_back(std::move(**next));
    }
  }
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[1].header.stream_id, 3u);
  EXPECT_EQ(frames[1].payload, "ab");
  EXPECT_FALSE(decoder.finish().has_value());
}

TEST(FrameDecoder, LengthOverFourMiB_FailsOnHeaderAlone) {
  // length 0x00400001 = 4 MiB + 1, stream 5, request; no data follows.
  FrameDecoder decoder;
  decoder.feed(bytesOf(std::string("\x00\x40\x00\x01\x00\x00\x00\x05\x01\x00", 10)));
  auto next = decoder.next();
  ASSERT_FALSE(next.has_value());
  EXPECT_EQ(next.error().kind, FrameError::Kind::kOversized);
  EXPECT_EQ(next.error().header.stream_id, 5u);
  EXPECT_NE(next.error().message().find("4194305"), std::string::npos);
}

TEST(FrameDecoder, LengthExactlyFourMiB_IsAccepted) {
  FrameDecoder decoder;
  decoder.feed(bytesOf(std::string("\x00\x40\x00\x00\x00\x00\x00\x01\x02\x00", 10)));
  auto next = decoder.next();
  ASSERT_TRUE(next.has_value());
  EXPECT_FALSE(next->has_value());  // waiting for data, not an error
}

TEST(FrameDecoder, UnknownType_Fails) {
  FrameDecoder decoder;
  decoder.feed(bytesOf(std::string("\x00\x00\x00\x00\x00\x00\x00\x01\x03\x00", 10)));
  auto next = decoder.next();
  ASSERT_FALSE(next.has_value());
  EXPECT_EQ(next.error().kind, FrameError::Kind::kUnknownType);
  EXPECT_FALSE(decoder.next().has_value());  // sticky
}

TEST(FrameDecoder, TruncatedHeaderAtEof_ReportsTruncated) {
  FrameDecoder decoder;
  decoder.feed(bytesOf(std::string("\x00\x00\x00", 3)));
  auto next = decoder.next();
  ASSERT_TRUE(next.has_value());
  EXPECT_FALSE(next->has_value());
  auto err = decoder.finish();
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->kind, FrameError::Kind::kTruncated);
  EXPECT_EQ(err->buffered, 3u);
}

TEST(FrameDecoder, TruncatedDataAtEof_ReportsTruncated) {
  FrameDecoder decoder;
  decoder.feed(bytesOf(workedExampleFrame().substr(0, 20)));
  ASSERT_TRUE(decoder.next().has_value());
  auto err = decoder.finish();
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->kind, FrameError::Kind::kTruncated);
  EXPECT_EQ(err->header.length, 40u);
}

TEST(Status, NotFound_MapsToNotFoundWithServerMessageAndRawCode) {
  const Error err = statusToError(5, "process already finished: not found");
  EXPECT_TRUE(err.is(Errc::kNotFound));
  EXPECT_NE(err.message().find("process already finished"), std::string::npos);
  EXPECT_EQ(statusCode(err), 5);
}

TEST(Status, CodeTable_MapsAsDocumented) {
  EXPECT_TRUE(statusToError(3, "m").is(Errc::kInvalidArgument));
  EXPECT_TRUE(statusToError(4, "m").is(Errc::kTimeout));
  EXPECT_TRUE(statusToError(6, "m").is(Errc::kAlreadyExists));
  EXPECT_TRUE(statusToError(7, "m").is(Errc::kPermission));
  EXPECT_TRUE(statusToError(12, "m").is(Errc::kUnsupported));
  EXPECT_TRUE(statusToError(14, "m").is(Errc::kUnavailable));
  EXPECT_TRUE(statusToError(9, "m").is(Errc::kInternal));
  EXPECT_EQ(statusCode(statusToError(9, "m")), 9);
}

TEST(Status, LocalError_HasNoStatusCode) {
  EXPECT_FALSE(statusCode(Error(Errc::kNotFound, "x (ttrpc status")).has_value());
  EXPECT_EQ(errorToStatus(Error(Errc::kNotFound, "gone")).code, StatusCode::kNotFound);
}

}  // namespace
}  // namespace nv::ttrpc
