// SPDX-License-Identifier: Apache-2.0
// Tests for the virtio-mmio v2 register state machine.
#include "vmm/devices/virtio/mmio_transport.h"

#include <gtest/gtest.h>

#include <cstring>

#include "tests/support/fake_guest_memory.h"
#include "tests/support/fake_irq_line.h"

namespace nv::vmm::virtio {
namespace {

using testing::FakeGuestMemory;
using testing::FakeIrqLine;

class FakeDevice final : public VirtioDevice {
 public:
  uint32_t deviceType() const override { return 2; }
  uint64_t deviceFeatures() const override { return kFeatureVersion1 | kFeatureEventIdx | 0x40; }
  std::vector<uint16_t> queueMaxSizes() const override { return {16, 16}; }
  void readConfig(uint64_t offset, std::span<uint8_t> data) override {
    for (size_t i = 0; i < data.size(); ++i) {
      data[i] = offset + i < sizeof(config) ? config[offset + i] : 0;
    }
  }
  void writeConfig(uint64_t offset, std::span<const uint8_t> data) override {
    for (size_t i = 0; i < data.size() && offset + i < sizeof(config); ++i) {
      config[offset + i] = data[i];
    }
  }
  Result<void> activate(ActivateContext context) override {
    if (fail_activate) {
      return fail(Errc::kInvalidArgument, "no");
    }
    ++activations;
    features = context.acked_features;
    queues = context.queues.size();
    return {};
  }
  void notify(uint32_t index) override { notified.push_back(index); }
  void reset() override { ++resets; }

  uint8_t config[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  bool fail_activate = false;
  int activations = 0;
  int resets = 0;
  uint64_t features = 0;
  size_t queues = 0;
  std::vector<uint32_t> notified;
};

class MmioTransportTest : public ::testing::Test {
 protected:
  uint32_t rd(uint64_t off) {
    uint32_t v = 0;
    transport_.read(off, std::span<uint8_t>(reinterpret_cast<uint8_t*>(&v), 4));
    return v;
  }
  void wr(uint64_t off, uint32_t v) {
    transport_.write(off, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&v), 4));
  }
  void setupQueue(uint32_t index, uint32_t size, uint64_t base) {
    wr(0x30, index);
    wr(0x38, size);
    wr(0x80, static_cast<uint32_t>(base));
    wr(0x84, 0);
    wr(0x90, static_cast<uint32_t>(base + 0x1000));
    wr(0x94, 0);
    wr(0xA0, static_cast<uint32_t>(base + 0x2000));
    wr(0xA4, 0);
    wr(0x44, 1);
  }
  void negotiate(uint64_t features) {
    wr(0x70, kStatusAcknowledge);
    wr(0x70, kStatusAcknowledge | kStatusDriver);
    wr(0x24, 0);
    wr(0x20, static_cast<uint32_t>(features));
    wr(0x24, 1);
    wr(0x20, static_cast<uint32_t>(features >> 32));
    wr(0x70, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
  }

  FakeGuestMemory memory_{0x100000};
  FakeIrqLine irq_;
  std::shared_ptr<FakeDevice> device_ = std::make_shared<FakeDevice>();
  MmioTransport transport_{device_, memory_, &irq_};
};

TEST_F(MmioTransportTest, IdentityRegisters) {
  EXPECT_EQ(rd(0x000), 0x74726976U);
  EXPECT_EQ(rd(0x004), 2U);
  EXPECT_EQ(rd(0x008), 2U);
  wr(0x14, 1);
  EXPECT_EQ(rd(0x10), 1U);  // VERSION_1 is bit 32
  wr(0x14, 0);
  EXPECT_EQ(rd(0x10), (1U << 29) | 0x40U);
}

TEST_F(MmioTransportTest, FullSetup_ActivatesDeviceWithAckedFeatures) {
  negotiate(kFeatureVersion1 | kFeatureEventIdx);
  EXPECT_EQ(rd(0x70) & kStatusFeaturesOk, kStatusFeaturesOk);
  setupQueue(0, 16, 0x10000);
  setupQueue(1, 8, 0x20000);
  EXPECT_EQ(rd(0x44), 1U);
  wr(0x70, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk);
  EXPECT_EQ(device_->activations, 1);
  EXPECT_EQ(device_->features, kFeatureVersion1 | kFeatureEventIdx);
  EXPECT_EQ(device_->queues, 2U);
  wr(0x50, 1);
  ASSERT_EQ(device_->notified.size(), 1U);
  EXPECT_EQ(device_->notified[0], 1U);
  EXPECT_EQ(transport_.violations(), 0U);
}

TEST_F(MmioTransportTest, FeaturesNotOffered_FeaturesOkStaysClear) {
  negotiate(kFeatureVersion1 | (1ULL << 5));
  EXPECT_EQ(rd(0x70) & kStatusFeaturesOk, 0U);
  EXPECT_GT(transport_.violations(), 0U);
}

TEST_F(MmioTransportTest, FeaturesWithoutVersion1_Refused) {
  negotiate(kFeatureEventIdx);
  EXPECT_EQ(rd(0x70) & kStatusFeaturesOk, 0U);
}

TEST_F(MmioTransportTest, QueueSizeInvalid_Ignored) {
  negotiate(kFeatureVersion1);
  wr(0x30, 0);
  EXPECT_EQ(rd(0x34), 16U);
  wr(0x38, 32);  // above max
  wr(0x38, 12);  // not a power of two
  EXPECT_EQ(transport_.violations(), 2U);
}

TEST_F(MmioTransportTest, QueueReadyWithRingOutsideRam_Refused) {
  negotiate(kFeatureVersion1);
  setupQueue(0, 16, 0xFFFFF000);
  EXPECT_EQ(rd(0x44), 0U);
  EXPECT_GT(transport_.violations(), 0U);
}

TEST_F(MmioTransportTest, MissingQueueSelected_Harmless) {
  negotiate(kFeatureVersion1);
  wr(0x30, 7);
  EXPECT_EQ(rd(0x34), 0U);
  wr(0x38, 8);
  wr(0x44, 1);
  EXPECT_EQ(rd(0x44), 0U);
}

TEST_F(MmioTransportTest, DriverOkWithoutFeaturesOk_NeedsReset) {
  wr(0x70, kStatusAcknowledge | kStatusDriver);
  wr(0x70, kStatusAcknowledge | kStatusDriver | kStatusDriverOk);
  EXPECT_EQ(device_->activations, 0);
  EXPECT_NE(rd(0x70) & kStatusNeedsReset, 0U);
}

TEST_F(MmioTransportTest, ActivationFailure_SetsNeedsResetAndConfigInterrupt) {
  device_->fail_activate = true;
  negotiate(kFeatureVersion1);
  wr(0x70, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk);
  EXPECT_NE(rd(0x70) & kStatusNeedsReset, 0U);
  EXPECT_EQ(rd(0x60) & kInterruptConfigChange, kInterruptConfigChange);
  EXPECT_EQ(irq_.count, 1);
}

TEST_F(MmioTransportTest, StatusZero_ResetsDeviceAndQueues) {
  negotiate(kFeatureVersion1);
  setupQueue(0, 16, 0x10000);
  wr(0x70, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk);
  wr(0x70, 0);
  EXPECT_EQ(device_->resets, 1);
  EXPECT_EQ(rd(0x70), 0U);
  wr(0x30, 0);
  EXPECT_EQ(rd(0x44), 0U);
}

TEST_F(MmioTransportTest, QueueWritesAfterDriverOk_Refused) {
  negotiate(kFeatureVersion1);
  setupQueue(0, 16, 0x10000);
  wr(0x70, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk);
  uint64_t before = transport_.violations();
  wr(0x30, 1);
  wr(0x80, 0x5000);
  wr(0x44, 0);
  wr(0x30, 0);
  EXPECT_EQ(rd(0x44), 1U);
  EXPECT_GT(transport_.violations(), before);
}

TEST_F(MmioTransportTest, ClearingStatusBits_Refused) {
  negotiate(kFeatureVersion1);
  wr(0x70, kStatusAcknowledge);
  EXPECT_EQ(rd(0x70), kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
}

TEST_F(MmioTransportTest, NotifyBeforeActivation_Ignored) {
  wr(0x50, 0);
  EXPECT_TRUE(device_->notified.empty());
}

TEST_F(MmioTransportTest, UnalignedOrNarrowRegisterAccess_Ignored) {
  uint8_t byte = 0x55;
  transport_.read(0x0, std::span<uint8_t>(&byte, 1));
  EXPECT_EQ(byte, 0x55);
  transport_.write(0x70, std::span<const uint8_t>(&byte, 1));
  EXPECT_EQ(rd(0x70), 0U);
  EXPECT_EQ(transport_.violations(), 2U);
}

TEST_F(MmioTransportTest, InterruptAck_ClearsBits) {
  transport_.interrupt().signal(kInterruptUsedBuffer | kInterruptConfigChange);
  EXPECT_EQ(rd(0x60), 3U);
  wr(0x64, kInterruptUsedBuffer);
  EXPECT_EQ(rd(0x60), 2U);
}

TEST_F(MmioTransportTest, ConfigSpace_ByteAccessAndGeneration) {
  uint8_t byte = 0;
  transport_.read(0x102, std::span<uint8_t>(&byte, 1));
  EXPECT_EQ(byte, 3);
  transport_.read(0x900, std::span<uint8_t>(&byte, 1));
  EXPECT_EQ(byte, 0);
  uint32_t gen = rd(0xFC);
  transport_.configChanged();
  EXPECT_EQ(rd(0xFC), gen + 1);
}

}  // namespace
}  // namespace nv::vmm::virtio
