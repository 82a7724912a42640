// SPDX-License-Identifier: Apache-2.0
// VirtqueueBuilder: lays out a split virtqueue in (fake) guest memory the way a driver would,
// so tests can hand-craft valid and hostile chains.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "tests/support/fake_guest_memory.h"
#include "vmm/devices/virtio/queue.h"

namespace nv::vmm::testing {

// Writes rings at fixed addresses: descriptor table at `base`, avail ring after it, used ring
// after that (4 KiB aligned). Acts as the driver side of the queue.
class VirtqueueBuilder {
 public:
  VirtqueueBuilder(FakeGuestMemory& memory, uint16_t size, uint64_t base = 0x1000)
      : memory_(memory), size_(size), desc_(base), avail_(base + 16ULL * size),
        used_((avail_ + 6 + 2ULL * size + 4095) & ~4095ULL) {}

  [[nodiscard]] uint64_t descTable() const { return desc_; }
  [[nodiscard]] uint64_t availRing() const { return avail_; }
  [[nodiscard]] uint64_t usedRing() const { return used_; }
  [[nodiscard]] uint64_t end() const { return used_ + 6 + 8ULL * size_; }

  // Configures `queue` to use these rings and marks it ready.
  void attach(virtio::Queue& queue, bool event_idx = false) const {
    queue.setSize(size_);
    queue.setDescTable(GuestAddress(desc_));
    queue.setAvailRing(GuestAddress(avail_));
    queue.setUsedRing(GuestAddress(used_));
    queue.setEventIdx(event_idx);
    queue.setReady(true);
  }

  // Writes descriptor `index` (no bounds checks: tests may write hostile values).
  void setDesc(uint16_t index, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next = 0) {
    virtio::VirtqDesc desc{addr, len, flags, next};
    std::memcpy(memory_.at(desc_ + 16ULL * index), &desc, sizeof(desc));
  }
  // Writes an entry of an indirect table at `table`.
  void setIndirect(uint64_t table, uint16_t index, uint64_t addr, uint32_t len, uint16_t flags,
                   uint16_t next = 0) {
    virtio::VirtqDesc desc{addr, len, flags, next};
    std::memcpy(memory_.at(table + 16ULL * index), &desc, sizeof(desc));
  }

  // Publishes `head` in the next avail slot and bumps avail.idx.
  void publish(uint16_t head) {
    write16(avail_ + 4 + 2ULL * (avail_idx_ % size_), head);
    ++avail_idx_;
    write16(avail_ + 2, avail_idx_);
  }
  // Sets avail.idx directly (hostile tests) and the internal counter.
  void setAvailIdx(uint16_t idx) {
    avail_idx_ = idx;
    write16(avail_ + 2, idx);
  }
  void setAvailFlags(uint16_t flags) { write16(avail_, flags); }
  void setUsedEvent(uint16_t value) { write16(avail_ + 4 + 2ULL * size_, value); }

  [[nodiscard]] uint16_t usedIdx() { return read16(used_ + 2); }
  [[nodiscard]] uint16_t usedFlags() { return read16(used_); }
  [[nodiscard]] uint16_t availEvent() { return read16(used_ + 4 + 8ULL * size_); }
  // The used element at position `pos` (free-running index).
  [[nodiscard]] std::pair<uint32_t, uint32_t> usedElem(uint16_t pos) {
    uint32_t elem[2];
    std::memcpy(elem, memory_.at(used_ + 4 + 8ULL * (pos % size_)), sizeof(elem));
    return {elem[0], elem[1]};
  }

 private:
  void write16(uint64_t gpa, uint16_t value) { std::memcpy(memory_.at(gpa), &value, 2); }
  uint16_t read16(uint64_t gpa) {
    uint16_t value = 0;
    std::memcpy(&value, memory_.at(gpa), 2);
    return value;
  }

  FakeGuestMemory& memory_;
  uint16_t size_;
  uint64_t desc_;
  uint64_t avail_;
  uint64_t used_;
  uint16_t avail_idx_ = 0;
};

}  // namespace nv::vmm::testing
