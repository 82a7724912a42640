// SPDX-License-Identifier: Apache-2.0
// vsock packet validation, RX writing and credit accounting.
#include "vmm/devices/virtio/vsock/packet.h"

#include <gtest/gtest.h>

#include <cstring>

#include "tests/support/fake_guest_memory.h"

namespace nv::vmm::virtio::vsock {
namespace {

using testing::FakeGuestMemory;

constexpr uint64_t kGuestCid = 3;

VsockHeader header(Op op, uint32_t len) {
  VsockHeader h{};
  h.src_cid = kGuestCid;
  h.dst_cid = kHostCid;
  h.src_port = 1000;
  h.dst_port = 52;
  h.len = len;
  h.type = kTypeStream;
  h.op = static_cast<uint16_t>(op);
  h.buf_alloc = 65536;
  return h;
}

class VsockPacketTest : public ::testing::Test {
 protected:
  void put(uint64_t gpa, const void* data, size_t len) {
    if (len > 0) std::memcpy(memory_.at(gpa), data, len);  // an empty span may have no data
  }
  DescriptorChain txChain(const VsockHeader& h, std::span<const uint8_t> payload) {
    put(0x1000, &h, sizeof h);
    put(0x2000, payload.data(), payload.size());
    DescriptorChain c;
    c.descriptors.push_back({GuestAddress(0x1000), sizeof h, false});
    if (!payload.empty()) {
      c.descriptors.push_back({GuestAddress(0x2000), static_cast<uint32_t>(payload.size()), false});
    }
    return c;
  }
  FakeGuestMemory memory_{1 << 20};
};

TEST_F(VsockPacketTest, ParseTx_RwWithPayload_ReturnsPayloadBuffers) {
  const uint8_t data[5] = {'h', 'e', 'l', 'l', 'o'};
  auto packet = parseTx(txChain(header(Op::kRw, 5), data), memory_, kGuestCid);
  ASSERT_TRUE(packet) << packet.error().message();
  EXPECT_EQ(packet->header.dst_port, 52U);
  uint8_t out[5];
  ASSERT_TRUE(readPayload(*packet, memory_, out));
  EXPECT_EQ(std::memcmp(out, data, 5), 0);
}

TEST_F(VsockPacketTest, ParseTx_HeaderAndPayloadInOneBuffer) {
  VsockHeader h = header(Op::kRw, 3);
  put(0x1000, &h, sizeof h);
  put(0x1000 + sizeof h, "abc", 3);
  DescriptorChain c;
  c.descriptors.push_back({GuestAddress(0x1000), sizeof h + 3, false});
  auto packet = parseTx(c, memory_, kGuestCid);
  ASSERT_TRUE(packet) << packet.error().message();
  ASSERT_EQ(packet->payload.size(), 1U);
  EXPECT_EQ(packet->payload[0].addr.value(), 0x1000 + sizeof h);
}

TEST_F(VsockPacketTest, ParseTx_HostilePackets_Rejected) {
  const uint8_t data[8] = {};
  struct Case {
    const char* what;
    VsockHeader h;
    size_t payload;
  };
  std::vector<Case> cases;
  auto h = header(Op::kRw, 8);
  h.src_cid = 2;
  cases.push_back({"spoofed src cid", h, 8});
  h = header(Op::kRw, 8);
  h.dst_cid = 7;
  cases.push_back({"dst not host", h, 8});
  h = header(Op::kRw, 8);
  h.type = 2;
  cases.push_back({"dgram", h, 8});
  h = header(static_cast<Op>(9), 0);
  cases.push_back({"unknown op", h, 0});
  h = header(Op::kRw, kMaxPayload + 1);
  cases.push_back({"too long", h, 8});
  h = header(Op::kRw, 100);
  cases.push_back({"len beyond buffers", h, 8});
  h = header(Op::kRequest, 8);
  cases.push_back({"payload on request", h, 8});
  for (const Case& c : cases) {
    EXPECT_FALSE(parseTx(txChain(c.h, std::span(data, c.payload)), memory_, kGuestCid)) << c.what;
  }
  DescriptorChain shortChain;
  shortChain.descriptors.push_back({GuestAddress(0x1000), 20, false});
  EXPECT_FALSE(parseTx(shortChain, memory_, kGuestCid));
  DescriptorChain writable = txChain(header(Op::kRequest, 0), {});
  writable.descriptors[0].device_writable = true;
  EXPECT_FALSE(parseTx(writable, memory_, kGuestCid));
  EXPECT_FALSE(parseTx(DescriptorChain{}, memory_, kGuestCid));
}

TEST_F(VsockPacketTest, WriteRx_SplitAcrossBuffers_RoundTrips) {
  DescriptorChain c;
  c.descriptors.push_back({GuestAddress(0x3000), 30, true});
  c.descriptors.push_back({GuestAddress(0x4000), 100, true});
  VsockHeader h = header(Op::kRw, 6);
  const uint8_t payload[6] = {1, 2, 3, 4, 5, 6};
  auto written = writeRx(c, memory_, h, payload);
  ASSERT_TRUE(written) << written.error().message();
  EXPECT_EQ(*written, 50U);
  VsockHeader back{};
  std::memcpy(&back, memory_.at(0x3000), 30);
  std::memcpy(reinterpret_cast<uint8_t*>(&back) + 30, memory_.at(0x4000), 14);
  EXPECT_EQ(back.len, 6U);
  EXPECT_EQ(back.dst_port, 52U);
  EXPECT_EQ(memory_.at(0x4000)[14], 1);
  EXPECT_EQ(memory_.at(0x4000)[19], 6);
}

TEST_F(VsockPacketTest, WriteRx_TooSmallOrReadableChain_Rejected) {
  DescriptorChain c;
  c.descriptors.push_back({GuestAddress(0x3000), 40, true});
  EXPECT_FALSE(writeRx(c, memory_, header(Op::kRequest, 0), {}));
  c.descriptors[0].len = 64;
  c.descriptors[0].device_writable = false;
  EXPECT_FALSE(writeRx(c, memory_, header(Op::kRequest, 0), {}));
}

TEST(VsockCredit, PeerFreeTracksInFlightBytesAndWraps) {
  Credit credit(1000);
  EXPECT_EQ(credit.peerFree(), 0U);  // nothing advertised yet
  credit.updatePeer(4096, 0);
  EXPECT_EQ(credit.peerFree(), 4096U);
  credit.sent(4000);
  EXPECT_EQ(credit.peerFree(), 96U);
  credit.updatePeer(4096, 4000);
  EXPECT_EQ(credit.peerFree(), 4096U);
  credit.updatePeer(100, 0);  // peer shrank below what is in flight
  EXPECT_EQ(credit.peerFree(), 0U);
  // Counters wrap at 2^32.
  Credit wrap(10);
  wrap.updatePeer(100, 0xFFFFFFF0U);
  wrap.sent(0xFFFFFFF0U);
  wrap.sent(0x20);  // tx_cnt wraps to 0x10
  EXPECT_EQ(wrap.peerFree(), 100U - 0x20U);
}

TEST(VsockCredit, ReceiveWindowAndCreditUpdates) {
  Credit credit(100);
  EXPECT_TRUE(credit.mayReceive(100));
  EXPECT_FALSE(credit.mayReceive(101));
  credit.received(80);
  EXPECT_FALSE(credit.mayReceive(21));
  EXPECT_TRUE(credit.mayReceive(20));
  EXPECT_FALSE(credit.creditUpdateDue(50));
  credit.forwarded(60);
  EXPECT_TRUE(credit.creditUpdateDue(50));
  EXPECT_TRUE(credit.mayReceive(80));
  VsockHeader h{};
  credit.stamp(h);
  EXPECT_EQ(h.buf_alloc, 100U);
  EXPECT_EQ(h.fwd_cnt, 60U);
  EXPECT_FALSE(credit.creditUpdateDue(1));
}

}  // namespace
}  // namespace nv::vmm::virtio::vsock
