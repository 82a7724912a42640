// SPDX-License-Identifier: Apache-2.0
// Tests for the PIO/MMIO range map.
#include "vmm/bus/bus.h"

#include <gtest/gtest.h>

#include <vector>

namespace nv::vmm {
namespace {

class Recorder final : public BusDevice {
 public:
  void read(uint64_t offset, std::span<uint8_t> data) override {
    last_offset = offset;
    data[0] = 0xAB;
  }
  void write(uint64_t offset, std::span<const uint8_t> data) override {
    last_offset = offset;
    written.assign(data.begin(), data.end());
  }
  uint64_t last_offset = ~0ULL;
  std::vector<uint8_t> written;
};

TEST(Bus, Insert_OverlappingWindows_Rejected) {
  Bus bus;
  auto dev = std::make_shared<Recorder>();
  ASSERT_TRUE(bus.insert(dev, 0x100, 0x10));
  EXPECT_FALSE(bus.insert(dev, 0x10F, 0x10));
  EXPECT_FALSE(bus.insert(dev, 0xF8, 0x9));
  EXPECT_FALSE(bus.insert(dev, 0x100, 0x1));
  EXPECT_TRUE(bus.insert(dev, 0x110, 0x10));
  EXPECT_TRUE(bus.insert(dev, 0xF0, 0x10));
  EXPECT_FALSE(bus.insert(dev, ~0ULL, 2));
  EXPECT_FALSE(bus.insert(dev, 0x1000, 0));
}

TEST(Bus, ReadWrite_InsideWindow_DispatchesWithOffset) {
  Bus bus;
  auto dev = std::make_shared<Recorder>();
  ASSERT_TRUE(bus.insert(dev, 0x3F8, 8));
  uint8_t byte = 0;
  EXPECT_TRUE(bus.read(0x3FD, std::span<uint8_t>(&byte, 1)));
  EXPECT_EQ(dev->last_offset, 5U);
  EXPECT_EQ(byte, 0xAB);
  const uint8_t out[2] = {1, 2};
  EXPECT_TRUE(bus.write(0x3F8, out));
  EXPECT_EQ(dev->written.size(), 2U);
}

TEST(Bus, Read_Unclaimed_ZeroFillsAndReturnsFalse) {
  Bus bus;
  auto dev = std::make_shared<Recorder>();
  ASSERT_TRUE(bus.insert(dev, 0x3F8, 8));
  uint8_t data[4] = {9, 9, 9, 9};
  EXPECT_FALSE(bus.read(0x3FE, data));  // straddles the window end
  EXPECT_EQ(data[0], 0);
  EXPECT_FALSE(bus.read(0x3F0, data));
}

}  // namespace
}  // namespace nv::vmm
