// SPDX-License-Identifier: Apache-2.0
// Tests for the split virtqueue walker against valid and hostile drivers.
#include "vmm/devices/virtio/queue.h"

#include <gtest/gtest.h>

#include "tests/support/fake_guest_memory.h"
#include "tests/support/virtqueue_builder.h"

namespace nv::vmm::virtio {
namespace {

using testing::FakeGuestMemory;
using testing::VirtqueueBuilder;

class QueueTest : public ::testing::Test {
 protected:
  FakeGuestMemory memory_{0x100000};
  VirtqueueBuilder driver_{memory_, 8};
  Queue queue_{256};
  void SetUp() override { driver_.attach(queue_); }
};

TEST_F(QueueTest, Validate_GoodRings_Succeeds) { EXPECT_TRUE(queue_.validate(memory_)); }

TEST_F(QueueTest, Validate_SizeNotPowerOfTwoOrTooBig_Fails) {
  queue_.setSize(6);
  EXPECT_FALSE(queue_.validate(memory_));
  queue_.setSize(512);
  EXPECT_FALSE(queue_.validate(memory_));
  queue_.setSize(0);
  EXPECT_FALSE(queue_.validate(memory_));
}

TEST_F(QueueTest, Validate_RingOutsideRamOrMisaligned_Fails) {
  queue_.setUsedRing(GuestAddress(0x100000 - 8));
  EXPECT_FALSE(queue_.validate(memory_));
  queue_.setUsedRing(GuestAddress(driver_.usedRing() + 2));
  EXPECT_FALSE(queue_.validate(memory_));
  queue_.setUsedRing(GuestAddress(driver_.usedRing()));
  queue_.setDescTable(GuestAddress(~0ULL - 15));
  EXPECT_FALSE(queue_.validate(memory_));
}

TEST_F(QueueTest, Pop_EmptyRing_ReturnsNullopt) {
  auto chain = queue_.pop(memory_);
  ASSERT_TRUE(chain);
  EXPECT_FALSE(chain->has_value());
}

TEST_F(QueueTest, Pop_ThreeDescriptorChain_ReturnsBuffersInOrder) {
  driver_.setDesc(0, 0x10000, 16, kDescFlagNext, 3);
  driver_.setDesc(3, 0x11000, 512, kDescFlagNext | kDescFlagWrite, 5);
  driver_.setDesc(5, 0x12000, 1, kDescFlagWrite);
  driver_.publish(0);
  auto chain = queue_.pop(memory_);
  ASSERT_TRUE(chain) << chain.error().message();
  ASSERT_TRUE(chain->has_value());
  const DescriptorChain& c = **chain;
  EXPECT_EQ(c.head, 0);
  ASSERT_EQ(c.descriptors.size(), 3U);
  EXPECT_EQ(c.descriptors[1].addr.value(), 0x11000U);
  EXPECT_TRUE(c.descriptors[2].device_writable);
  EXPECT_EQ(c.readableBytes(), 16U);
  EXPECT_EQ(c.writableBytes(), 513U);
  EXPECT_FALSE((*queue_.pop(memory_)).has_value());
}

TEST_F(QueueTest, Pop_NextLoop_FailsInsteadOfSpinning) {
  driver_.setDesc(0, 0x10000, 16, kDescFlagNext, 1);
  driver_.setDesc(1, 0x10000, 16, kDescFlagNext, 0);
  driver_.publish(0);
  uint16_t bad = 0xFFFF;
  auto chain = queue_.pop(memory_, &bad);
  ASSERT_FALSE(chain);
  EXPECT_NE(chain.error().context().find("longer than the queue"), std::string::npos);
  EXPECT_EQ(bad, 0);
}

TEST_F(QueueTest, Pop_SelfLoop_Fails) {
  driver_.setDesc(2, 0x10000, 16, kDescFlagNext, 2);
  driver_.publish(2);
  EXPECT_FALSE(queue_.pop(memory_));
}

TEST_F(QueueTest, Pop_HeadIndexPastQueueSize_Fails) {
  driver_.publish(8);
  EXPECT_FALSE(queue_.pop(memory_));
}

TEST_F(QueueTest, Pop_NextIndexPastQueueSize_Fails) {
  driver_.setDesc(0, 0x10000, 16, kDescFlagNext, 200);
  driver_.publish(0);
  EXPECT_FALSE(queue_.pop(memory_));
}

TEST_F(QueueTest, Pop_AvailIdxTooFarAhead_Fails) {
  driver_.setAvailIdx(9);  // 9 entries in an 8-entry ring
  EXPECT_FALSE(queue_.pop(memory_));
  EXPECT_FALSE(queue_.pending(memory_));
}

TEST_F(QueueTest, Pop_BufferOutsideRam_Fails) {
  driver_.setDesc(0, 0x100000 - 8, 16, 0);
  driver_.publish(0);
  EXPECT_FALSE(queue_.pop(memory_));
}

TEST_F(QueueTest, Pop_BufferAddressWrapsPastTwoToThe64_Fails) {
  driver_.setDesc(0, ~0ULL - 4, 16, 0);
  driver_.publish(0);
  EXPECT_FALSE(queue_.pop(memory_));
}

TEST_F(QueueTest, Pop_ReadableAfterWritable_Fails) {
  driver_.setDesc(0, 0x10000, 16, kDescFlagNext | kDescFlagWrite, 1);
  driver_.setDesc(1, 0x11000, 16, 0);
  driver_.publish(0);
  EXPECT_FALSE(queue_.pop(memory_));
}

TEST_F(QueueTest, Pop_FailedChainIsConsumed_NextChainStillPops) {
  driver_.setDesc(0, ~0ULL, 16, 0);
  driver_.setDesc(1, 0x10000, 16, 0);
  driver_.publish(0);
  driver_.publish(1);
  EXPECT_FALSE(queue_.pop(memory_));
  auto chain = queue_.pop(memory_);
  ASSERT_TRUE(chain);
  ASSERT_TRUE(chain->has_value());
  EXPECT_EQ((*chain)->head, 1);
}

TEST_F(QueueTest, Pop_IndicesWrapPastU16_StillWorks) {
  queue_.setIndices(0xFFFE, 0xFFFE);
  driver_.setAvailIdx(0xFFFE);
  driver_.setDesc(0, 0x10000, 4, 0);
  for (int i = 0; i < 4; ++i) {
    driver_.publish(0);
  }
  for (int i = 0; i < 4; ++i) {
    auto chain = queue_.pop(memory_);
    ASSERT_TRUE(chain) << chain.error().message();
    ASSERT_TRUE(chain->has_value());
    ASSERT_TRUE(queue_.addUsed(memory_, 0, 4));
  }
  EXPECT_EQ(queue_.nextAvail(), 2);
  EXPECT_EQ(driver_.usedIdx(), 2);
  EXPECT_FALSE((*queue_.pop(memory_)).has_value());
}

TEST(QueueHole, Pop_BufferCrossingMemoryHole_Fails) {
  FakeGuestMemory memory(0, 0x10000, 0x20000, 0x10000);
  VirtqueueBuilder driver(memory, 4);
  Queue queue(16);
  driver.attach(queue);
  driver.setDesc(0, 0xF000, 0x2000, 0);  // runs off the first region into the hole
  driver.publish(0);
  EXPECT_FALSE(queue.pop(memory));
}

TEST(QueueHole, Pop_ChainWithBuffersOnBothSidesOfHole_Succeeds) {
  FakeGuestMemory memory(0, 0x10000, 0x20000, 0x10000);
  VirtqueueBuilder driver(memory, 4);
  Queue queue(16);
  driver.attach(queue);
  driver.setDesc(0, 0xF000, 0x1000, kDescFlagNext, 1);
  driver.setDesc(1, 0x20000, 0x1000, kDescFlagWrite);
  driver.publish(0);
  auto chain = queue.pop(memory);
  ASSERT_TRUE(chain) << chain.error().message();
  ASSERT_TRUE(chain->has_value());
  EXPECT_EQ((*chain)->descriptors.size(), 2U);
}

TEST_F(QueueTest, Pop_IndirectTable_ReturnsItsBuffers) {
  const uint64_t table = 0x30000;
  driver_.setIndirect(table, 0, 0x10000, 16, kDescFlagNext, 1);
  driver_.setIndirect(table, 1, 0x11000, 100, kDescFlagWrite);
  driver_.setDesc(0, table, 32, kDescFlagIndirect);
  driver_.publish(0);
  auto chain = queue_.pop(memory_);
  ASSERT_TRUE(chain) << chain.error().message();
  ASSERT_TRUE(chain->has_value());
  EXPECT_EQ((*chain)->descriptors.size(), 2U);
  EXPECT_EQ((*chain)->writableBytes(), 100U);
}

TEST_F(QueueTest, Pop_DirectThenIndirect_Succeeds) {
  const uint64_t table = 0x30000;
  driver_.setIndirect(table, 0, 0x11000, 8, kDescFlagWrite);
  driver_.setDesc(0, 0x10000, 16, kDescFlagNext, 1);
  driver_.setDesc(1, table, 16, kDescFlagIndirect);
  driver_.publish(0);
  auto chain = queue_.pop(memory_);
  ASSERT_TRUE(chain) << chain.error().message();
  EXPECT_EQ((*chain)->descriptors.size(), 2U);
}

TEST_F(QueueTest, Pop_HostileIndirectTables_Fail) {
  const uint64_t table = 0x30000;
  struct Case {
    const char* what;
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
  };
  const Case cases[] = {
      {"length not multiple of 16", table, 24, kDescFlagIndirect},
      {"zero length", table, 0, kDescFlagIndirect},
      {"more entries than queue", table, 16 * 9, kDescFlagIndirect},
      {"misaligned", table + 8, 16, kDescFlagIndirect},
      {"outside RAM", 0x100000 - 16, 32, kDescFlagIndirect},
      {"indirect plus next", table, 16, kDescFlagIndirect | kDescFlagNext},
  };
  driver_.setIndirect(table, 0, 0x10000, 16, 0);
  driver_.setIndirect(table, 1, 0x10000, 16, 0);
  for (const Case& c : cases) {
    driver_.setDesc(0, c.addr, c.len, c.flags, 1);
    driver_.setDesc(1, 0x10000, 16, 0);
    driver_.publish(0);
    EXPECT_FALSE(queue_.pop(memory_)) << c.what;
  }
}

TEST_F(QueueTest, Pop_NestedIndirectOrIndirectLoop_Fails) {
  const uint64_t table = 0x30000;
  driver_.setIndirect(table, 0, table, 16, kDescFlagIndirect);
  driver_.setDesc(0, table, 16, kDescFlagIndirect);
  driver_.publish(0);
  EXPECT_FALSE(queue_.pop(memory_));

  driver_.setIndirect(table, 0, 0x10000, 16, kDescFlagNext, 1);
  driver_.setIndirect(table, 1, 0x10000, 16, kDescFlagNext, 0);
  driver_.setDesc(0, table, 32, kDescFlagIndirect);
  driver_.publish(0);
  EXPECT_FALSE(queue_.pop(memory_));

  driver_.setIndirect(table, 0, 0x10000, 16, kDescFlagNext, 7);
  driver_.setDesc(0, table, 32, kDescFlagIndirect);
  driver_.publish(0);
  EXPECT_FALSE(queue_.pop(memory_));
}

TEST_F(QueueTest, AddUsed_WritesElementAndIndex) {
  driver_.setDesc(4, 0x10000, 16, kDescFlagWrite);
  driver_.publish(4);
  ASSERT_TRUE(*queue_.pop(memory_));
  ASSERT_TRUE(queue_.addUsed(memory_, 4, 12));
  EXPECT_EQ(driver_.usedIdx(), 1);
  EXPECT_EQ(driver_.usedElem(0), std::make_pair(4U, 12U));
  EXPECT_FALSE(queue_.addUsed(memory_, 8, 0));
}

TEST_F(QueueTest, NeedsInterrupt_WithoutEventIdx_HonoursNoInterruptFlag) {
  ASSERT_TRUE(queue_.addUsed(memory_, 0, 0));
  EXPECT_TRUE(*queue_.needsInterrupt(memory_));
  driver_.setAvailFlags(kAvailFlagNoInterrupt);
  ASSERT_TRUE(queue_.addUsed(memory_, 0, 0));
  EXPECT_FALSE(*queue_.needsInterrupt(memory_));
}

TEST_F(QueueTest, NeedsInterrupt_WithEventIdx_OnlyWhenUsedEventCrossed) {
  queue_.setEventIdx(true);
  ASSERT_TRUE(queue_.addUsed(memory_, 0, 0));
  EXPECT_TRUE(*queue_.needsInterrupt(memory_));  // first decision always signals
  driver_.setUsedEvent(3);                        // driver wants a kick once idx passes 3
  ASSERT_TRUE(queue_.addUsed(memory_, 0, 0));     // idx 2
  EXPECT_FALSE(*queue_.needsInterrupt(memory_));
  ASSERT_TRUE(queue_.addUsed(memory_, 0, 0));     // idx 3
  EXPECT_FALSE(*queue_.needsInterrupt(memory_));
  ASSERT_TRUE(queue_.addUsed(memory_, 0, 0));     // idx 4: used_event 3 crossed
  EXPECT_TRUE(*queue_.needsInterrupt(memory_));
}

TEST_F(QueueTest, NeedsInterrupt_EventIdxAcrossU16Wrap_Signals) {
  queue_.setEventIdx(true);
  queue_.setIndices(0, 0xFFFF);
  ASSERT_TRUE(queue_.needsInterrupt(memory_));
  driver_.setUsedEvent(0xFFFF);
  ASSERT_TRUE(queue_.addUsed(memory_, 0, 0));  // 0xFFFF -> 0
  EXPECT_TRUE(*queue_.needsInterrupt(memory_));
}

TEST_F(QueueTest, SetNotification_EventIdx_WritesAvailEventAndReportsPending) {
  queue_.setEventIdx(true);
  driver_.setDesc(0, 0x10000, 16, 0);
  driver_.publish(0);
  auto more = queue_.setNotification(memory_, true);
  ASSERT_TRUE(more);
  EXPECT_TRUE(*more);
  EXPECT_EQ(driver_.availEvent(), 0);
  ASSERT_TRUE(*queue_.pop(memory_));
  EXPECT_FALSE(*queue_.setNotification(memory_, true));
  EXPECT_EQ(driver_.availEvent(), 1);
}

TEST_F(QueueTest, SetNotification_NoEventIdx_TogglesNoNotify) {
  ASSERT_TRUE(queue_.setNotification(memory_, false));
  EXPECT_EQ(driver_.usedFlags(), kUsedFlagNoNotify);
  ASSERT_TRUE(queue_.setNotification(memory_, true));
  EXPECT_EQ(driver_.usedFlags(), 0);
}

TEST_F(QueueTest, Reset_ClearsState) {
  queue_.setIndices(5, 5);
  queue_.reset();
  EXPECT_FALSE(queue_.ready());
  EXPECT_EQ(queue_.size(), 256);
  EXPECT_EQ(queue_.nextAvail(), 0);
}

}  // namespace
}  // namespace nv::vmm::virtio
