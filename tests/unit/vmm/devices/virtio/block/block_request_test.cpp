// SPDX-License-Identifier: Apache-2.0
// virtio-blk request parsing and execution against a temp file, with hostile requests.
#include "vmm/devices/virtio/block/block_request.h"

#include <sys/timerfd.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "tests/support/fake_guest_memory.h"
#include "tests/support/fake_irq_line.h"
#include "tests/support/virtqueue_builder.h"
#include "vmm/devices/virtio/block/block.h"

namespace nv::vmm::virtio::block {
namespace {

using testing::FakeGuestMemory;
using testing::FakeIrqLine;
using testing::VirtqueueBuilder;

struct Header {
  uint32_t type;
  uint32_t reserved;
  uint64_t sector;
};

constexpr uint64_t kHdr = 0x10000;
constexpr uint64_t kData = 0x20000;
constexpr uint64_t kStatus = 0x30000;

DescriptorChain chain(std::vector<Descriptor> descs) {
  DescriptorChain c;
  c.head = 0;
  c.descriptors = std::move(descs);
  return c;
}

class BlockRequestTest : public ::testing::Test {
 protected:
  void header(uint32_t type, uint64_t sector) {
    Header h{type, 0, sector};
    std::memcpy(memory_.at(kHdr), &h, sizeof h);
  }
  ParseResult parse3(uint32_t type, uint64_t sector, uint32_t len, bool writable) {
    header(type, sector);
    return parse(chain({{GuestAddress(kHdr), 16, false},
                        {GuestAddress(kData), len, writable},
                        {GuestAddress(kStatus), 1, true}}),
                 memory_, disk_);
  }
  FakeGuestMemory memory_{1 << 20};
  DiskGeometry disk_{.capacity_sectors = 100, .read_only = false, .discard = true};
};

TEST_F(BlockRequestTest, ReadInRange_Parsed) {
  auto r = parse3(kTypeIn, 10, 4096, true);
  ASSERT_TRUE(r.request) << r.error;
  EXPECT_EQ(r.request->sector, 10U);
  EXPECT_EQ(r.request->data_len, 4096U);
  EXPECT_EQ(r.request->status.value(), kStatus);
}

TEST_F(BlockRequestTest, HostileRequests_GetErrorStatus) {
  struct Case {
    uint32_t type;
    uint64_t sector;
    uint32_t len;
    bool writable;
    uint8_t status;
  };
  const Case cases[] = {
      {kTypeIn, 99, 1024, true, kStatusIoErr},         // runs past the end
      {kTypeIn, ~0ULL, 512, true, kStatusIoErr},       // sector overflow
      {kTypeIn, ~0ULL / 512, 512, true, kStatusIoErr}, // byte offset overflow
      {kTypeIn, 0, 100, true, kStatusIoErr},           // not whole sectors
      {kTypeIn, 0, 512, false, kStatusIoErr},          // read into device-readable buffer
      {kTypeOut, 0, 512, true, kStatusIoErr},          // write from device-writable buffer
      {77, 0, 512, true, kStatusUnsupported},          // unknown type
      {kTypeGetId, 0, 20, false, kStatusIoErr},        // GET_ID into readable buffer
  };
  for (const Case& c : cases) {
    auto r = parse3(c.type, c.sector, c.len, c.writable);
    EXPECT_FALSE(r.request) << c.type << " " << c.sector;
    EXPECT_EQ(r.status, c.status);
    ASSERT_TRUE(r.status_at);
    EXPECT_EQ(r.status_at->value(), kStatus);
  }
}

TEST_F(BlockRequestTest, ReadOnlyDisk_WriteAndDiscardRefused) {
  disk_.read_only = true;
  EXPECT_FALSE(parse3(kTypeOut, 0, 512, false).request);
  EXPECT_FALSE(parse3(kTypeDiscard, 0, 16, false).request);
  EXPECT_TRUE(parse3(kTypeIn, 0, 512, true).request);
}

TEST_F(BlockRequestTest, NoStatusByte_NoStatusAddress) {
  header(kTypeIn, 0);
  auto r = parse(chain({{GuestAddress(kHdr), 16, false}, {GuestAddress(kData), 512, false}}),
                 memory_, disk_);
  EXPECT_FALSE(r.request);
  EXPECT_FALSE(r.status_at);
  r = parse(chain({}), memory_, disk_);
  EXPECT_FALSE(r.request);
}

TEST_F(BlockRequestTest, ShortOrWritableHeader_Rejected) {
  header(kTypeIn, 0);
  auto r = parse(chain({{GuestAddress(kHdr), 8, false}, {GuestAddress(kStatus), 1, true}}),
                 memory_, disk_);
  EXPECT_FALSE(r.request);
  r = parse(chain({{GuestAddress(kHdr), 16, true}, {GuestAddress(kStatus), 1, true}}), memory_,
            disk_);
  EXPECT_FALSE(r.request);
}

TEST_F(BlockRequestTest, Flush_NoData_Parsed) {
  header(kTypeFlush, 0);
  auto r = parse(chain({{GuestAddress(kHdr), 16, false}, {GuestAddress(kStatus), 1, true}}),
                 memory_, disk_);
  ASSERT_TRUE(r.request);
  EXPECT_EQ(r.request->data_len, 0U);
}

TEST_F(BlockRequestTest, DiscardSegments_Validated) {
  Segment seg{10, 20, 0};
  std::memcpy(memory_.at(kData), &seg, sizeof seg);
  auto r = parse3(kTypeDiscard, 0, 16, false);
  ASSERT_TRUE(r.request) << r.error;
  ASSERT_EQ(r.request->segments.size(), 1U);
  EXPECT_EQ(r.request->segments[0].num_sectors, 20U);
  seg = {90, 20, 0};  // past the end
  std::memcpy(memory_.at(kData), &seg, sizeof seg);
  EXPECT_FALSE(parse3(kTypeDiscard, 0, 16, false).request);
  seg = {0, 1, 2};  // reserved flag
  std::memcpy(memory_.at(kData), &seg, sizeof seg);
  EXPECT_FALSE(parse3(kTypeWriteZeroes, 0, 16, false).request);
  seg = {0, 1, 1};  // unmap is fine for write zeroes, not for discard
  std::memcpy(memory_.at(kData), &seg, sizeof seg);
  EXPECT_TRUE(parse3(kTypeWriteZeroes, 0, 16, false).request);
  EXPECT_FALSE(parse3(kTypeDiscard, 0, 16, false).request);
  EXPECT_FALSE(parse3(kTypeDiscard, 0, 24, false).request);  // not whole segments
  EXPECT_FALSE(parse3(kTypeDiscard, 0, 16 * (kMaxDiscardSegments + 1), false).request);
}

// End to end on the device: a queue in fake memory, a temp disk file.
class BlockDeviceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = std::filesystem::temp_directory_path() /
            ("nv-blk-" + std::to_string(::getpid()) + ".img");
    std::ofstream(path_) << std::string(64 * 512, '\0');
    queues_.emplace_back(Block::kQueueSize);
    driver_.attach(queues_[0]);
    open({});
  }
  void open(const DiskRateLimit& limit) {
    auto block = Block::open(path_.string(), false, "disk-id-123", limit);
    ASSERT_TRUE(block) << block.error().message();
    block_ = *block;
    ASSERT_TRUE(block_->activate(ActivateContext{&memory_, queues_, &interrupt_, 0}));
  }
  // Makes `count` 1 KiB read requests available without processing them.
  void publishReads(int count) {
    Header h{kTypeIn, 0, 0};
    std::memcpy(memory_.at(kHdr), &h, sizeof h);
    driver_.setDesc(0, kHdr, 16, kDescFlagNext, 1);
    driver_.setDesc(1, kData, 1024, static_cast<uint16_t>(kDescFlagNext | kDescFlagWrite), 2);
    driver_.setDesc(2, kStatus, 1, kDescFlagWrite);
    for (int i = 0; i < count; ++i) {
      driver_.publish(0);
    }
  }
  void TearDown() override { std::filesystem::remove(path_); }
  uint8_t request(uint32_t type, uint64_t sector, uint32_t len, bool writable) {
    Header h{type, 0, sector};
    std::memcpy(memory_.at(kHdr), &h, sizeof h);
    *memory_.at(kStatus) = 0xEE;
    driver_.setDesc(0, kHdr, 16, kDescFlagNext, 1);
    driver_.setDesc(1, kData, len, static_cast<uint16_t>(kDescFlagNext | (writable ? kDescFlagWrite : 0)), 2);
    driver_.setDesc(2, kStatus, 1, kDescFlagWrite);
    driver_.publish(0);
    block_->processQueue();
    return *memory_.at(kStatus);
  }

  std::filesystem::path path_;
  FakeGuestMemory memory_{1 << 20};
  VirtqueueBuilder driver_{memory_, 16, 0x40000};
  std::vector<Queue> queues_;
  FakeIrqLine irq_;
  InterruptState interrupt_{&irq_};
  std::shared_ptr<Block> block_;
};

TEST_F(BlockDeviceTest, WriteThenRead_RoundTripsThroughFile) {
  std::memset(memory_.at(kData), 0xAB, 1024);
  EXPECT_EQ(request(kTypeOut, 3, 1024, false), kStatusOk);
  std::memset(memory_.at(kData), 0, 1024);
  EXPECT_EQ(request(kTypeIn, 3, 1024, true), kStatusOk);
  EXPECT_EQ(memory_.at(kData)[0], 0xAB);
  EXPECT_EQ(memory_.at(kData)[1023], 0xAB);
  EXPECT_EQ(driver_.usedIdx(), 2);
  EXPECT_EQ(driver_.usedElem(1).second, 1025U);  // data + status
  EXPECT_GE(irq_.count, 1);
  EXPECT_EQ(block_->stats().write_bytes, 1024U);
}

TEST_F(BlockDeviceTest, RateLimit_RequestsWaitOnTheRingForTokens) {
  using namespace std::chrono_literals;
  const auto t0 = TokenBucket::Clock::now();
  open(DiskRateLimit{RateLimit{}, RateLimit{2, 0}});  // 2 requests/s, burst 2
  ASSERT_GE(block_->throttleFd(), 0);
  publishReads(5);
  block_->processQueue(t0);
  EXPECT_EQ(driver_.usedIdx(), 2);  // the burst
  EXPECT_EQ(block_->stats().throttled, 1U);
  itimerspec armed{};
  ASSERT_EQ(::timerfd_gettime(block_->throttleFd(), &armed), 0);
  EXPECT_TRUE(armed.it_value.tv_sec != 0 || armed.it_value.tv_nsec != 0);  // wakes us later
  block_->processQueue(t0 + 100ms);
  EXPECT_EQ(driver_.usedIdx(), 2);
  block_->processQueue(t0 + 501ms);  // one token back
  EXPECT_EQ(driver_.usedIdx(), 3);
  block_->processQueue(t0 + 1502ms);  // two more
  EXPECT_EQ(driver_.usedIdx(), 5);
  EXPECT_EQ(block_->stats().read_bytes, 5 * 1024U);
}

TEST_F(BlockDeviceTest, RateLimit_BytesLimitCountsWhatRequestsMove) {
  using namespace std::chrono_literals;
  const auto t0 = TokenBucket::Clock::now();
  open(DiskRateLimit{RateLimit{1024, 0}, RateLimit{}});  // 1 KiB/s, 1 KiB burst
  publishReads(3);  // 1 KiB each
  block_->processQueue(t0);
  EXPECT_EQ(driver_.usedIdx(), 1);  // the burst
  block_->processQueue(t0 + 500ms);
  EXPECT_EQ(driver_.usedIdx(), 2);  // in with 512 bytes saved, leaves 512 in debt
  block_->processQueue(t0 + 990ms);
  EXPECT_EQ(driver_.usedIdx(), 2);  // the debt is still being paid
  block_->processQueue(t0 + 1600ms);
  EXPECT_EQ(driver_.usedIdx(), 3);
}

TEST_F(BlockDeviceTest, NoRateLimit_NoTimer) { EXPECT_EQ(block_->throttleFd(), -1); }

TEST_F(BlockDeviceTest, GetIdFlushAndBadRequest) {
  EXPECT_EQ(request(kTypeGetId, 0, 20, true), kStatusOk);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(memory_.at(kData))), "disk-id-123");
  EXPECT_EQ(request(kTypeIn, 64, 512, true), kStatusIoErr);
  EXPECT_EQ(block_->stats().bad_requests, 1U);
  EXPECT_EQ(driver_.usedIdx(), 2);
}

TEST_F(BlockDeviceTest, BrokenRing_MarksNeedsResetAndStops) {
  driver_.setAvailIdx(100);  // more entries than the queue has
  block_->processQueue();
  EXPECT_TRUE(interrupt_.needsReset());
  EXPECT_EQ(block_->stats().queue_errors, 1U);
  block_->reset();
  interrupt_.clear();
  EXPECT_FALSE(interrupt_.needsReset());
}

TEST_F(BlockDeviceTest, ConfigSpace_CapacityAndReadOnlyFeature) {
  uint8_t cap[8];
  block_->readConfig(0, cap);
  uint64_t sectors = 0;
  std::memcpy(&sectors, cap, 8);
  EXPECT_EQ(sectors, 64U);
  EXPECT_EQ(block_->deviceFeatures() & (1ULL << 5), 0U);
  auto ro = Block::open(path_.string(), true, "x");
  ASSERT_TRUE(ro);
  EXPECT_NE((*ro)->deviceFeatures() & (1ULL << 5), 0U);
  EXPECT_FALSE(Block::open("/nonexistent", false, "x"));
}

TEST_F(BlockDeviceTest, ReplaceMedia_LaterRequestsUseTheNewFile) {
  auto other = std::filesystem::path(path_.string() + ".new");
  std::ofstream(other) << std::string(128 * 512, 'N');
  auto capacity = block_->replaceMedia(other.string(), false);
  ASSERT_TRUE(capacity) << capacity.error().message();
  EXPECT_EQ(*capacity, 128U);
  EXPECT_EQ(block_->capacitySectors(), 128U);
  EXPECT_EQ(block_->path(), other.string());
  uint8_t cap[8];
  block_->readConfig(0, cap);
  uint64_t sectors = 0;
  std::memcpy(&sectors, cap, 8);
  EXPECT_EQ(sectors, 128U);
  EXPECT_EQ(request(kTypeIn, 100, 512, true), kStatusOk);  // past the old end
  EXPECT_EQ(memory_.at(kData)[0], 'N');
  EXPECT_EQ(block_->stats().media_changes, 1U);
  // Mode mismatch, missing file, empty file: refused, the old media stays.
  EXPECT_FALSE(block_->replaceMedia(path_.string(), true));
  EXPECT_FALSE(block_->replaceMedia("/nonexistent.img", false));
  auto empty = std::filesystem::path(path_.string() + ".empty");
  std::ofstream{empty};
  EXPECT_FALSE(block_->replaceMedia(empty.string(), false));
  EXPECT_EQ(block_->path(), other.string());
  EXPECT_EQ(block_->stats().media_changes, 1U);
  std::filesystem::remove(other);
  std::filesystem::remove(empty);
}

}  // namespace
}  // namespace nv::vmm::virtio::block
