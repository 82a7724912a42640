// SPDX-License-Identifier: Apache-2.0
// virtio-net on fake guest memory, with a SOCK_SEQPACKET socketpair standing in for the tap
// (it keeps frame boundaries as a tap does): tx and rx framing, back-pressure, hostile chains,
// and both rate limiters on a fake clock.
#include "vmm/devices/virtio/net/net.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "tests/support/fake_guest_memory.h"
#include "tests/support/fake_irq_line.h"
#include "tests/support/virtqueue_builder.h"
#include "vmm/config/vm_config.h"
#include "vmm/devices/virtio/net/tap.h"

namespace nv::vmm::virtio::net {
namespace {

using namespace std::chrono_literals;
using testing::FakeGuestMemory;
using testing::FakeIrqLine;
using testing::VirtqueueBuilder;

constexpr uint64_t kRxBuf = 0x20000;  // rx buffers, 4 KiB apart
constexpr uint64_t kTxBuf = 0x60000;  // tx buffers
constexpr MacAddress kMac{0x52, 0x54, 0x00, 0x12, 0x34, 0x56};

std::vector<uint8_t> frameBytes(size_t len, uint8_t seed) {
  std::vector<uint8_t> out(len);
  for (size_t i = 0; i < len; ++i) {
    out[i] = static_cast<uint8_t>(seed + i * 7);
  }
  return out;
}

class NetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    queues_.emplace_back(Net::kQueueSize);
    queues_.emplace_back(Net::kQueueSize);
    rx_.attach(queues_[Net::kRxQueue]);
    tx_.attach(queues_[Net::kTxQueue]);
    open({}, {});
  }
  void open(const NetRateLimit& rx_limit, const NetRateLimit& tx_limit) {
    net_.reset();
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    device_fd_ = sv[0];
    peer_.reset(sv[1]);
    auto net = Net::create(io_, UniqueFd(sv[0]), kMac, rx_limit, tx_limit);
    ASSERT_TRUE(net) << net.error().message();
    net_ = *net;
    ASSERT_TRUE(net_->activate(ActivateContext{&memory_, queues_, &interrupt_, 0}));
  }
  // The host side puts a frame (header included) on the "tap".
  void hostSends(const std::vector<uint8_t>& bytes) {
    ASSERT_EQ(::send(peer_.get(), bytes.data(), bytes.size(), MSG_DONTWAIT),
              static_cast<ssize_t>(bytes.size()));
  }
  // What the device wrote to the "tap": one frame, or empty when none.
  std::vector<uint8_t> hostReceives() {
    std::vector<uint8_t> buf(128 * 1024);
    ssize_t n = ::recv(peer_.get(), buf.data(), buf.size(), MSG_DONTWAIT);
    buf.resize(n > 0 ? static_cast<size_t>(n) : 0);
    return buf;
  }
  // Bytes of the next frame still queued towards the device (not read by it), 0 if none.
  size_t pendingOnTap() {
    uint8_t byte = 0;
    ssize_t n = ::recv(device_fd_, &byte, 1, MSG_PEEK | MSG_DONTWAIT | MSG_TRUNC);
    return n > 0 ? static_cast<size_t>(n) : 0;
  }
  // Posts rx buffer `i` (one writable descriptor of `len` bytes) as chain head i.
  void postRx(uint16_t i, uint32_t len, uint16_t flags = kDescFlagWrite) {
    rx_.setDesc(i, kRxBuf + 0x1000ULL * i, len, flags);
    rx_.publish(i);
  }
  // Puts `frame` (header + data) in tx buffer `i` and publishes it as a one-descriptor chain.
  void postTx(uint16_t i, const std::vector<uint8_t>& frame) {
    const uint64_t at = kTxBuf + 0x11000ULL * i;
    std::memcpy(memory_.at(at), frame.data(), frame.size());
    tx_.setDesc(i, at, static_cast<uint32_t>(frame.size()), 0);
    tx_.publish(i);
  }
  std::vector<uint8_t> guestBytes(uint64_t at, size_t len) {
    return std::vector<uint8_t>(memory_.at(at), memory_.at(at) + len);
  }

  FakeGuestMemory memory_{4 << 20};
  VirtqueueBuilder rx_{memory_, 16, 0x1000};
  VirtqueueBuilder tx_{memory_, 16, 0x4000};
  std::vector<Queue> queues_;
  FakeIrqLine irq_;
  InterruptState interrupt_{&irq_};
  boost::asio::io_context io_;  // before net_: the device's tap watch lives on it
  int device_fd_ = -1;
  UniqueFd peer_;
  std::shared_ptr<Net> net_;
};

TEST_F(NetTest, DeviceIdFeaturesQueuesAndMacInConfig) {
  EXPECT_EQ(net_->deviceType(), 1U);
  EXPECT_EQ(net_->deviceFeatures(), kFeatureVersion1 | kFeatureMac);
  EXPECT_EQ(net_->queueMaxSizes().size(), 2U);
  uint8_t config[8];
  std::memset(config, 0xAA, sizeof config);
  net_->readConfig(0, config);
  EXPECT_EQ(std::memcmp(config, kMac.data(), 6), 0);
  EXPECT_EQ(config[6], 0);  // no status field
  uint8_t tail[2];
  net_->readConfig(4, tail);
  EXPECT_EQ(tail[0], 0x34);
  EXPECT_EQ(tail[1], 0x56);
}

TEST_F(NetTest, Tx_FrameReachesTheTapWithItsHeaderCleaned) {
  // Header and frame in two descriptors; the guest's header has offload bits it did not
  // negotiate: the tap gets a header of zeros and the frame unchanged.
  std::vector<uint8_t> header(kHdrSize, 0xFF);
  std::vector<uint8_t> frame = frameBytes(60, 1);
  std::memcpy(memory_.at(kTxBuf), header.data(), header.size());
  std::memcpy(memory_.at(kTxBuf + 0x1000), frame.data(), frame.size());
  tx_.setDesc(0, kTxBuf, kHdrSize, kDescFlagNext, 1);
  tx_.setDesc(1, kTxBuf + 0x1000, 60, 0);
  tx_.publish(0);
  net_->notify(Net::kTxQueue);
  std::vector<uint8_t> got = hostReceives();
  ASSERT_EQ(got.size(), kHdrSize + 60);
  EXPECT_EQ(std::vector<uint8_t>(got.begin(), got.begin() + kHdrSize),
            std::vector<uint8_t>(kHdrSize, 0));
  EXPECT_EQ(std::vector<uint8_t>(got.begin() + kHdrSize, got.end()), frame);
  ASSERT_EQ(tx_.usedIdx(), 1);
  EXPECT_EQ(tx_.usedElem(0).first, 0U);
  EXPECT_EQ(tx_.usedElem(0).second, 0U);  // nothing written into a tx chain
  EXPECT_EQ(net_->stats().tx_frames, 1U);
  EXPECT_EQ(net_->stats().tx_bytes, 60U);
  EXPECT_GE(irq_.count, 1);
}

TEST_F(NetTest, Tx_HeaderSplitAcrossDescriptorsAndFrameInOne) {
  // 5 + 7 header bytes, then 3 frame bytes after the header in the second descriptor.
  std::vector<uint8_t> frame = frameBytes(1514, 9);
  std::vector<uint8_t> all(kHdrSize, 0);
  all.insert(all.end(), frame.begin(), frame.end());
  std::memcpy(memory_.at(kTxBuf), all.data(), 5);
  std::memcpy(memory_.at(kTxBuf + 0x1000), all.data() + 5, 10);
  std::memcpy(memory_.at(kTxBuf + 0x2000), all.data() + 15, all.size() - 15);
  tx_.setDesc(0, kTxBuf, 5, kDescFlagNext, 1);
  tx_.setDesc(1, kTxBuf + 0x1000, 10, kDescFlagNext, 2);
  tx_.setDesc(2, kTxBuf + 0x2000, static_cast<uint32_t>(all.size() - 15), 0);
  tx_.publish(0);
  postTx(3, all);  // and the same frame in one descriptor
  net_->processTx();
  for (int i = 0; i < 2; ++i) {
    std::vector<uint8_t> got = hostReceives();
    ASSERT_EQ(got.size(), all.size()) << i;
    EXPECT_EQ(got, all) << i;
  }
  EXPECT_EQ(net_->stats().tx_frames, 2U);
}

TEST_F(NetTest, Rx_FrameLandsInThePostedBuffersWithTheUsedLength) {
  // A two-descriptor rx chain (header-sized first part, then the rest).
  rx_.setDesc(0, kRxBuf, 20, static_cast<uint16_t>(kDescFlagWrite | kDescFlagNext), 1);
  rx_.setDesc(1, kRxBuf + 0x1000, 2048, kDescFlagWrite);
  rx_.publish(0);
  std::vector<uint8_t> sent(kHdrSize, 0x77);  // the tap's header: rewritten for the guest
  std::vector<uint8_t> frame = frameBytes(100, 3);
  sent.insert(sent.end(), frame.begin(), frame.end());
  hostSends(sent);
  net_->processRx();
  ASSERT_EQ(rx_.usedIdx(), 1);
  EXPECT_EQ(rx_.usedElem(0).first, 0U);
  EXPECT_EQ(rx_.usedElem(0).second, kHdrSize + 100);
  std::vector<uint8_t> hdr = guestBytes(kRxBuf, kHdrSize);
  std::vector<uint8_t> want_hdr(kHdrSize, 0);
  want_hdr[10] = 1;  // num_buffers = 1
  EXPECT_EQ(hdr, want_hdr);
  // 8 frame bytes after the header in the first buffer, 92 in the second.
  EXPECT_EQ(guestBytes(kRxBuf + kHdrSize, 8),
            std::vector<uint8_t>(frame.begin(), frame.begin() + 8));
  EXPECT_EQ(guestBytes(kRxBuf + 0x1000, 92), std::vector<uint8_t>(frame.begin() + 8, frame.end()));
  EXPECT_EQ(net_->stats().rx_frames, 1U);
  EXPECT_EQ(net_->stats().rx_bytes, 100U);
  EXPECT_GE(irq_.count, 1);
  EXPECT_FALSE(net_->watchingTap());  // no buffer left: back-pressure, see the next test
}

TEST_F(NetTest, Rx_NoBuffersPosted_TheTapIsNotRead) {
  std::vector<uint8_t> sent = frameBytes(kHdrSize + 64, 5);
  hostSends(sent);
  net_->processRx();
  EXPECT_EQ(pendingOnTap(), sent.size()) << "the device read the tap without a buffer";
  EXPECT_FALSE(net_->watchingTap()) << "back-pressure: the tap must not be watched";
  EXPECT_EQ(net_->stats().rx_frames, 0U);
  EXPECT_EQ(rx_.usedFlags(), 0) << "the guest must be asked to notify";
  // The guest posts a buffer and kicks: the frame goes in.
  postRx(0, 2048);
  net_->notify(Net::kRxQueue);
  EXPECT_EQ(pendingOnTap(), 0U);
  ASSERT_EQ(rx_.usedIdx(), 1);
  EXPECT_EQ(rx_.usedElem(0).second, sent.size());
}

TEST_F(NetTest, Rx_EmptyTap_WatchedUntilAFrameArrives) {
  postRx(0, 2048);
  postRx(1, 2048);
  net_->processRx();
  EXPECT_TRUE(net_->watchingTap());
  EXPECT_EQ(rx_.usedIdx(), 0);
  hostSends(frameBytes(kHdrSize + 40, 8));
  for (int i = 0; i < 100 && net_->stats().rx_frames == 0; ++i) {
    io_.run_one_for(100ms);  // the tap watch fires on the loop
  }
  EXPECT_EQ(net_->stats().rx_frames, 1U);
  EXPECT_EQ(rx_.usedIdx(), 1);
}

TEST_F(NetTest, Rx_FrameLargerThanTheBuffer_DroppedAndTheBufferStaysPosted) {
  postRx(0, kHdrSize + 64);
  hostSends(frameBytes(kHdrSize + 200, 1));
  hostSends(frameBytes(kHdrSize + 50, 2));
  net_->processRx();
  EXPECT_EQ(net_->stats().rx_dropped, 1U);
  ASSERT_EQ(rx_.usedIdx(), 1);
  EXPECT_EQ(rx_.usedElem(0).second, kHdrSize + 50);  // the second frame, in the same buffer
  const std::vector<uint8_t> second = frameBytes(kHdrSize + 50, 2);
  EXPECT_EQ(guestBytes(kRxBuf + kHdrSize, 50),
            std::vector<uint8_t>(second.begin() + kHdrSize, second.end()));
  EXPECT_EQ(guestBytes(kRxBuf + kHdrSize + 64, 64), std::vector<uint8_t>(64, 0))
      << "wrote past the buffer";
}

TEST_F(NetTest, Rx_RuntFromTheTap_Dropped) {
  postRx(0, 2048);
  hostSends(std::vector<uint8_t>(kHdrSize, 0));  // a header and no frame
  hostSends(std::vector<uint8_t>(5, 0));
  net_->processRx();
  EXPECT_EQ(net_->stats().rx_dropped, 2U);
  EXPECT_EQ(rx_.usedIdx(), 0);
}

TEST_F(NetTest, Rx_ReadOnlyOrShortBuffers_ReturnedUnusedAndCounted) {
  postRx(0, 2048, 0);  // device-readable: not an rx buffer
  postRx(1, 8);        // shorter than the header
  hostSends(frameBytes(kHdrSize + 30, 4));
  net_->processRx();
  EXPECT_EQ(net_->stats().bad_rx_buffers, 2U);
  ASSERT_EQ(rx_.usedIdx(), 2);
  EXPECT_EQ(rx_.usedElem(0).second, 0U);
  EXPECT_EQ(rx_.usedElem(1).second, 0U);
  EXPECT_EQ(guestBytes(kRxBuf, 16), std::vector<uint8_t>(16, 0)) << "wrote a read-only buffer";
  EXPECT_EQ(pendingOnTap(), kHdrSize + 30) << "the frame waits for a good buffer";
  EXPECT_EQ(net_->stats().queue_errors, 0U);
}

TEST_F(NetTest, Tx_OversizeShortOrWritableChains_DroppedCountedAndReturned) {
  // 12 + 65551 bytes: one more than the limit.
  tx_.setDesc(0, kTxBuf, kHdrSize, kDescFlagNext, 1);
  tx_.setDesc(1, kTxBuf + 0x1000, kMaxFrameWithHdr - kHdrSize + 1, 0);
  tx_.publish(0);
  tx_.setDesc(2, kTxBuf, 8, 0);  // shorter than the header
  tx_.publish(2);
  tx_.setDesc(3, kTxBuf, kHdrSize, kDescFlagNext, 4);
  tx_.setDesc(4, kTxBuf + 0x1000, 64, kDescFlagWrite);  // device-writable in a tx chain
  tx_.publish(3);
  net_->processTx();
  EXPECT_EQ(net_->stats().tx_dropped, 3U);
  EXPECT_EQ(net_->stats().tx_frames, 0U);
  EXPECT_EQ(tx_.usedIdx(), 3);
  EXPECT_TRUE(hostReceives().empty());
  // The largest allowed frame goes through.
  tx_.setDesc(1, kTxBuf + 0x1000, kMaxFrameWithHdr - kHdrSize, 0);
  tx_.publish(0);
  net_->processTx();
  EXPECT_EQ(hostReceives().size(), kMaxFrameWithHdr);
  EXPECT_EQ(net_->stats().queue_errors, 0U);
}

TEST_F(NetTest, BadDescriptorOutsideRam_DeviceNeedsResetAndStops) {
  tx_.setDesc(0, 0x7000'0000, 100, 0);
  tx_.publish(0);
  net_->processTx();
  EXPECT_EQ(net_->stats().queue_errors, 1U);
  EXPECT_TRUE(interrupt_.needsReset());
  EXPECT_TRUE(hostReceives().empty());
  // Stopped: even good frames wait for the reset.
  postTx(1, frameBytes(kHdrSize + 20, 0));
  net_->processTx();
  EXPECT_TRUE(hostReceives().empty());
}

TEST_F(NetTest, RxAvailIndexFarAhead_DeviceNeedsReset) {
  rx_.setAvailIdx(100);  // 100 entries in a 16-entry ring
  hostSends(frameBytes(kHdrSize + 20, 0));
  net_->processRx();
  EXPECT_EQ(net_->stats().queue_errors, 1U);
  EXPECT_TRUE(interrupt_.needsReset());
  EXPECT_EQ(pendingOnTap(), kHdrSize + 20U);
}

TEST_F(NetTest, ResetThenNotify_TouchesNothing) {
  net_->reset();
  postTx(0, frameBytes(kHdrSize + 20, 0));
  net_->notify(Net::kTxQueue);
  EXPECT_TRUE(hostReceives().empty());
  EXPECT_EQ(tx_.usedIdx(), 0);
}

TEST_F(NetTest, Activate_ServesWhatWasPostedBeforeDriverOkOnTheLoop) {
  net_->reset();
  postRx(0, 2048);
  postTx(1, frameBytes(kHdrSize + 30, 6));
  hostSends(frameBytes(kHdrSize + 40, 7));
  ASSERT_TRUE(net_->activate(ActivateContext{&memory_, queues_, &interrupt_, 0}));
  EXPECT_EQ(rx_.usedIdx(), 0) << "activate() runs on a vCPU thread: no queue work there";
  io_.poll();  // the loop thread's turn
  EXPECT_EQ(rx_.usedIdx(), 1);
  EXPECT_EQ(tx_.usedIdx(), 1);
  EXPECT_EQ(hostReceives().size(), kHdrSize + 30);
}

TEST_F(NetTest, Activate_WithoutBothQueues_Refused) {
  net_->reset();
  std::vector<Queue> one;
  one.emplace_back(Net::kQueueSize);
  rx_.attach(one[0]);
  EXPECT_FALSE(net_->activate(ActivateContext{&memory_, one, &interrupt_, 0}));
  queues_[Net::kTxQueue].setReady(false);
  EXPECT_FALSE(net_->activate(ActivateContext{&memory_, queues_, &interrupt_, 0}));
}

TEST_F(NetTest, TxRateLimit_FramesWaitOnTheRingForTokens) {
  const auto t0 = Net::Clock::now();
  open({}, NetRateLimit{RateLimit{}, RateLimit{2, 0}});  // 2 frames/s, burst 2
  ASSERT_GE(net_->txThrottleFd(), 0);
  EXPECT_EQ(net_->rxThrottleFd(), -1);
  for (uint16_t i = 0; i < 5; ++i) {
    postTx(i, frameBytes(kHdrSize + 60, static_cast<uint8_t>(i)));
  }
  net_->processTx(t0);
  EXPECT_EQ(tx_.usedIdx(), 2);  // the burst
  EXPECT_EQ(net_->stats().tx_throttled, 1U);
  itimerspec armed{};
  ASSERT_EQ(::timerfd_gettime(net_->txThrottleFd(), &armed), 0);
  EXPECT_TRUE(armed.it_value.tv_sec != 0 || armed.it_value.tv_nsec != 0);  // wakes us later
  net_->processTx(t0 + 100ms);
  EXPECT_EQ(tx_.usedIdx(), 2);
  net_->processTx(t0 + 501ms);  // one token back
  EXPECT_EQ(tx_.usedIdx(), 3);
  net_->processTx(t0 + 1502ms);  // two more
  EXPECT_EQ(tx_.usedIdx(), 5);
  int frames = 0;
  while (!hostReceives().empty()) {
    ++frames;
  }
  EXPECT_EQ(frames, 5);
}

TEST_F(NetTest, RxRateLimit_BytesStopReadingTheTapUntilTheDebtIsPaid) {
  const auto t0 = Net::Clock::now();
  open(NetRateLimit{RateLimit{1000, 0}, RateLimit{}}, {});  // 1000 frame bytes/s, burst 1000
  ASSERT_GE(net_->rxThrottleFd(), 0);
  for (uint16_t i = 0; i < 3; ++i) {
    postRx(i, 2048);
    hostSends(frameBytes(kHdrSize + 600, static_cast<uint8_t>(i)));
  }
  net_->processRx(t0);
  EXPECT_EQ(rx_.usedIdx(), 2);  // 1000 tokens: in at 1000, in at 400, then 200 in debt
  EXPECT_EQ(net_->stats().rx_throttled, 1U);
  EXPECT_FALSE(net_->watchingTap()) << "a throttled rx must not watch the tap";
  EXPECT_EQ(pendingOnTap(), kHdrSize + 600U);
  net_->processRx(t0 + 150ms);  // 50 still owed
  EXPECT_EQ(rx_.usedIdx(), 2);
  net_->processRx(t0 + 250ms);
  EXPECT_EQ(rx_.usedIdx(), 3);
  EXPECT_EQ(net_->stats().rx_bytes, 1800U);
}

TEST_F(NetTest, RxRateLimit_FramesPerSecond) {
  const auto t0 = Net::Clock::now();
  open(NetRateLimit{RateLimit{}, RateLimit{1, 0}}, {});  // 1 frame/s
  for (uint16_t i = 0; i < 2; ++i) {
    postRx(i, 2048);
    hostSends(frameBytes(kHdrSize + 60, 0));
  }
  net_->processRx(t0);
  EXPECT_EQ(rx_.usedIdx(), 1);
  net_->processRx(t0 + 999ms);
  EXPECT_EQ(rx_.usedIdx(), 1);
  net_->processRx(t0 + 1001ms);
  EXPECT_EQ(rx_.usedIdx(), 2);
}

TEST(NetConfig, ParseNet_FieldsAndOneLineErrorsNamingTheField) {
  auto tap = VmConfig::parseNet("tap=nvtap0");
  ASSERT_TRUE(tap) << tap.error().message();
  EXPECT_EQ(tap->tap, "nvtap0");
  EXPECT_FALSE(tap->fd);
  EXPECT_FALSE(tap->mac);
  EXPECT_FALSE(tap->limit.limited());
  auto full = VmConfig::parseNet("fd=7,mac=52:54:00:AB:cd:01,bps=1m:2m,pps=1000");
  ASSERT_TRUE(full) << full.error().message();
  EXPECT_EQ(full->fd, 7);
  ASSERT_TRUE(full->mac);
  EXPECT_EQ(*full->mac, (MacAddress{0x52, 0x54, 0x00, 0xab, 0xcd, 0x01}));
  EXPECT_EQ(full->limit.bytes, (RateLimit{1u << 20, 2u << 20}));
  EXPECT_EQ(full->limit.ops, (RateLimit{1000, 0}));
  struct Bad {
    const char* spec;
    const char* names;
  };
  for (const Bad& bad :
       {Bad{"", "tap=NAME or fd=N"}, Bad{"mac=52:54:00:00:00:01", "tap=NAME"},
        Bad{"tap=a,fd=4", "fd=4"}, Bad{"tap=", "tap="},
        Bad{"tap=0123456789abcdef", "tap=0123456789abcdef"}, Bad{"fd=x", "fd=x"},
        Bad{"fd=1", "fd=1"}, Bad{"tap=t,mac=01:00:5e:00:00:01", "mac=01:00:5e"},
        Bad{"tap=t,mac=52:54:00", "mac=52:54:00"}, Bad{"tap=t,mac=00:00:00:00:00:00", "mac="},
        Bad{"tap=t,bps=fast", "bps=fast"}, Bad{"tap=t,pps=10:5", "pps=10:5"},
        Bad{"tap=t,speed=1", "speed=1"}, Bad{"tap=t,", "''"}}) {
    auto parsed = VmConfig::parseNet(bad.spec);
    ASSERT_FALSE(parsed) << bad.spec;
    const std::string message = parsed.error().message();
    EXPECT_NE(message.find(bad.names), std::string::npos) << bad.spec << ": " << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
  EXPECT_EQ(formatMac(kMac), "52:54:00:12:34:56");
}

TEST(NetConfig, OpenTapErrorsAreOneLine) {
  UniqueFd file(::open("/proc/self/exe", O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(file);
  auto bad = adoptTap(file.get());  // a regular file is no tap
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("--net fd=" + std::to_string(file.get())), std::string::npos)
      << bad.error().message();
  EXPECT_EQ(bad.error().message().find('\n'), std::string::npos);
  EXPECT_FALSE(openTap(""));
  EXPECT_FALSE(openTap(std::string(16, 'x')));
  boost::asio::io_context io;
  auto none = Net::create(io, UniqueFd(), kMac);
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message().find("needs a tap"), std::string::npos);
}

}  // namespace
}  // namespace nv::vmm::virtio::net
