// SPDX-License-Identifier: Apache-2.0
// Tests for bounds-checked guest memory access (fake and memfd-backed).
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

#include "tests/support/fake_guest_memory.h"
#include "vmm/memory/guest_memory_mmap.h"

namespace nv::vmm {
namespace {

using testing::FakeGuestMemory;

TEST(GuestAddress, CheckedAdd_PastTwoToThe64_ReturnsNullopt) {
  GuestAddress addr(std::numeric_limits<uint64_t>::max() - 1);
  EXPECT_TRUE(addr.checkedAdd(1).has_value());
  EXPECT_FALSE(addr.checkedAdd(2).has_value());
}

TEST(GuestMemory, ReadWriteObj_InsideRam_RoundTrips) {
  FakeGuestMemory memory(0x10000);
  ASSERT_TRUE(memory.writeObj<uint64_t>(GuestAddress(0x100), 0x1122334455667788ULL));
  auto value = memory.readObj<uint64_t>(GuestAddress(0x100));
  ASSERT_TRUE(value);
  EXPECT_EQ(*value, 0x1122334455667788ULL);
}

TEST(GuestMemory, ReadObj_StraddlingEnd_Fails) {
  FakeGuestMemory memory(0x1000);
  EXPECT_FALSE(memory.readObj<uint32_t>(GuestAddress(0xFFE)));
  EXPECT_TRUE(memory.readObj<uint32_t>(GuestAddress(0xFFC)));
}

TEST(GuestMemory, Slice_WrappingLength_Fails) {
  FakeGuestMemory memory(0x1000);
  EXPECT_FALSE(memory.slice(GuestAddress(0x10), std::numeric_limits<uint64_t>::max()));
  EXPECT_FALSE(memory.slice(GuestAddress(std::numeric_limits<uint64_t>::max()), 2));
}

TEST(GuestMemory, Slice_CrossingHole_Fails) {
  FakeGuestMemory memory(0, 0x1000, 0x2000, 0x1000);
  EXPECT_TRUE(memory.slice(GuestAddress(0x0), 0x1000));
  EXPECT_FALSE(memory.slice(GuestAddress(0xF00), 0x200));
  EXPECT_FALSE(memory.slice(GuestAddress(0x1800), 0x10));
  EXPECT_TRUE(memory.slice(GuestAddress(0x2000), 0x1000));
  EXPECT_FALSE(memory.isRam(GuestAddress(0xF00), 0x1200));
  std::vector<std::span<uint8_t>> spans;
  EXPECT_FALSE(memory.hostSpans(GuestAddress(0xF00), 0x1200, spans));
}

TEST(GuestMemory, Read_AcrossAdjacentRegions_Succeeds) {
  FakeGuestMemory memory(0, 0x1000, 0x1000, 0x1000);
  ASSERT_TRUE(memory.writeObj<uint32_t>(GuestAddress(0xFFE), 0xAABBCCDD));
  auto value = memory.readObj<uint32_t>(GuestAddress(0xFFE));
  ASSERT_TRUE(value);
  EXPECT_EQ(*value, 0xAABBCCDDU);
  std::vector<std::span<uint8_t>> spans;
  ASSERT_TRUE(memory.hostSpans(GuestAddress(0xFFE), 4, spans));
  EXPECT_EQ(spans.size(), 2U);
  // One slice cannot span two regions even when they touch.
  EXPECT_FALSE(memory.slice(GuestAddress(0xFFE), 4));
}

TEST(GuestMemoryMmap, Create_TwoRegions_BackedBySharedMemfd) {
  auto memory = GuestMemoryMmap::create({{GuestAddress(0), 0x10000}, {GuestAddress(0x100000),
                                                                       0x10000}});
  ASSERT_TRUE(memory) << memory.error().message();
  EXPECT_GE(memory->fd(), 0);
  EXPECT_EQ(memory->totalSize(), 0x20000U);
  EXPECT_EQ(memory->end().value(), 0x110000U);
  ASSERT_TRUE(memory->writeObj<uint32_t>(GuestAddress(0x100010), 7));
  EXPECT_EQ(*memory->readObj<uint32_t>(GuestAddress(0x100010)), 7U);
  EXPECT_FALSE(memory->readObj<uint32_t>(GuestAddress(0x20000)));
  EXPECT_EQ(memory->regions()[1].fd_offset, 0x10000U);
}

TEST(GuestMemoryMmap, Create_OverlappingOrUnaligned_Rejected) {
  EXPECT_FALSE(GuestMemoryMmap::create({{GuestAddress(0), 0x2000}, {GuestAddress(0x1000),
                                                                     0x1000}}));
  EXPECT_FALSE(GuestMemoryMmap::create({{GuestAddress(0x10), 0x1000}}));
  EXPECT_FALSE(GuestMemoryMmap::create({}));
  EXPECT_FALSE(GuestMemoryMmap::create({{GuestAddress(~0xFFFULL), 0x2000}}));
}

}  // namespace
}  // namespace nv::vmm
