// SPDX-License-Identifier: Apache-2.0
// virtio-rng on fake guest memory: filled lengths, the per-request bound, hostile chains.
#include "vmm/devices/virtio/rng/rng.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "tests/support/fake_guest_memory.h"
#include "tests/support/fake_irq_line.h"
#include "tests/support/virtqueue_builder.h"

namespace nv::vmm::virtio::rng {
namespace {

using testing::FakeGuestMemory;
using testing::FakeIrqLine;
using testing::VirtqueueBuilder;

constexpr uint64_t kBuf = 0x20000;
constexpr uint64_t kBuf2 = 0x80000;

class RngTest : public ::testing::Test {
 protected:
  void SetUp() override {
    queues_.emplace_back(Rng::kQueueSize);
    driver_.attach(queues_[0]);
    ASSERT_TRUE(rng_.activate(ActivateContext{&memory_, queues_, &interrupt_, 0}));
  }
  // Bytes in [addr, addr+len) that are non-zero (random data is almost never all zeros).
  size_t nonZero(uint64_t addr, size_t len) {
    return static_cast<size_t>(std::count_if(memory_.at(addr), memory_.at(addr) + len,
                                             [](uint8_t b) { return b != 0; }));
  }

  FakeGuestMemory memory_{1 << 20};
  VirtqueueBuilder driver_{memory_, 16, 0x1000};
  std::vector<Queue> queues_;
  FakeIrqLine irq_;
  InterruptState interrupt_{&irq_};
  Rng rng_;
};

TEST_F(RngTest, DeviceIdFeaturesAndEmptyConfig) {
  EXPECT_EQ(rng_.deviceType(), 4U);
  EXPECT_NE(rng_.deviceFeatures() & kFeatureVersion1, 0U);
  EXPECT_EQ(rng_.queueMaxSizes().size(), 1U);
  uint8_t config[8];
  std::memset(config, 0xAA, sizeof config);
  rng_.readConfig(0, config);
  EXPECT_EQ(std::count(config, config + 8, 0), 8);
}

TEST_F(RngTest, WritableBuffer_FilledWithRandomBytes) {
  driver_.setDesc(0, kBuf, 256, kDescFlagWrite);
  driver_.publish(0);
  rng_.processQueue();
  ASSERT_EQ(driver_.usedIdx(), 1);
  EXPECT_EQ(driver_.usedElem(0).second, 256U);
  EXPECT_GT(nonZero(kBuf, 256), 200U);
  EXPECT_EQ(nonZero(kBuf + 256, 256), 0U) << "wrote past the buffer";
  EXPECT_EQ(rng_.stats().bytes, 256U);
  EXPECT_GE(irq_.count, 1);
}

TEST_F(RngTest, LargeChain_BoundedPerRequest) {
  // Two buffers of 48 KiB: only the first 64 KiB of the chain is filled.
  driver_.setDesc(0, kBuf, 48 * 1024, kDescFlagWrite | kDescFlagNext, 1);
  driver_.setDesc(1, kBuf2, 48 * 1024, kDescFlagWrite);
  driver_.publish(0);
  rng_.processQueue();
  ASSERT_EQ(driver_.usedIdx(), 1);
  EXPECT_EQ(driver_.usedElem(0).second, Rng::kMaxBytesPerRequest);
  EXPECT_EQ(nonZero(kBuf2 + 16 * 1024, 32 * 1024), 0U) << "filled past the bound";
  EXPECT_GT(nonZero(kBuf2, 16 * 1024), 15000U);
}

TEST_F(RngTest, ReadableBuffer_RefusedWithZeroBytes) {
  driver_.setDesc(0, kBuf, 64, 0);  // device-readable: a broken request
  driver_.publish(0);
  driver_.setDesc(1, kBuf2, 64, kDescFlagWrite);
  driver_.publish(1);
  rng_.processQueue();
  ASSERT_EQ(driver_.usedIdx(), 2);
  EXPECT_EQ(driver_.usedElem(0).second, 0U);
  EXPECT_EQ(nonZero(kBuf, 64), 0U);
  EXPECT_EQ(driver_.usedElem(1).second, 64U);
  EXPECT_EQ(rng_.stats().bad_requests, 1U);
}

TEST_F(RngTest, BufferOutsideRam_RefusedAndDeviceKeepsWorking) {
  driver_.setDesc(0, (1 << 20) - 16, 64, kDescFlagWrite);  // runs off the end of RAM
  driver_.publish(0);
  rng_.processQueue();
  // The chain walker refuses it (device needs reset) or the device answers 0 bytes; either
  // way nothing is written out of bounds and the VMM stays up.
  EXPECT_TRUE(interrupt_.needsReset() || rng_.stats().bad_requests == 1U);
}

TEST_F(RngTest, BrokenRing_NeedsResetThenRecovers) {
  driver_.setAvailIdx(100);
  rng_.processQueue();
  EXPECT_TRUE(interrupt_.needsReset());
  EXPECT_EQ(rng_.stats().queue_errors, 1U);
  rng_.reset();
  rng_.processQueue();  // inactive: does nothing
  EXPECT_EQ(rng_.stats().queue_errors, 1U);
}

}  // namespace
}  // namespace nv::vmm::virtio::rng
