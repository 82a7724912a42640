// SPDX-License-Identifier: Apache-2.0
// Split virtqueue processing (virtio 1.2 §2.7), validating everything the guest wrote.
#include "vmm/devices/virtio/queue.h"

#include <fmt/format.h>

#include <atomic>

namespace nv::vmm::virtio {
namespace {

// Offsets inside the rings (§2.7.6, §2.7.8).
constexpr uint64_t kRingHeader = 4;       // flags + idx
constexpr uint64_t kAvailElem = 2;        // u16 ring entry
constexpr uint64_t kUsedElem = 8;         // {u32 id, u32 len}

struct UsedElem {
  uint32_t id;
  uint32_t len;
};
static_assert(sizeof(UsedElem) == 8);

Unexpected broken(std::string what) { return fail(Errc::kProtocol, std::move(what)); }

}  // namespace

uint64_t DescriptorChain::readableBytes() const noexcept {
  uint64_t total = 0;
  for (const Descriptor& d : descriptors) {
    total += d.device_writable ? 0 : d.len;
  }
  return total;
}

uint64_t DescriptorChain::writableBytes() const noexcept {
  uint64_t total = 0;
  for (const Descriptor& d : descriptors) {
    total += d.device_writable ? d.len : 0;
  }
  return total;
}

Result<void> Queue::validate(const GuestMemory& memory) const {
  if (size_ == 0 || size_ > max_size_ || (size_ & (size_ - 1)) != 0) {
    return fail(Errc::kInvalidArgument,
                fmt::format("queue size {} is not a power of two in 1..{}", size_, max_size_));
  }
  // Bounds: sizes are at most 16 * 32768 + 6, no overflow; isRam rejects wrapping ranges.
  struct Area {
    const char* name;
    GuestAddress addr;
    uint64_t len;
    uint64_t align;
  };
  const Area areas[] = {
      {"descriptor table", desc_table_, 16ULL * size_, 16},
      {"available ring", avail_ring_, kRingHeader + kAvailElem * size_ + 2, 2},
      {"used ring", used_ring_, kRingHeader + kUsedElem * size_ + 2, 4},
  };
  for (const Area& area : areas) {
    if (area.addr.value() % area.align != 0) {
      return fail(Errc::kInvalidArgument, fmt::format("queue {} at {:#x} is not {}-byte aligned",
                                                      area.name, area.addr.value(), area.align));
    }
    if (!memory.isRam(area.addr, area.len)) {
      return fail(Errc::kInvalidArgument, fmt::format("queue {} at {:#x}+{:#x} is not guest RAM",
                                                      area.name, area.addr.value(), area.len));
    }
  }
  return {};
}

void Queue::reset() noexcept {
  size_ = max_size_;
  ready_ = false;
  event_idx_ = false;
  desc_table_ = avail_ring_ = used_ring_ = GuestAddress(0);
  next_avail_ = next_used_ = signalled_used_ = 0;
  signalled_valid_ = false;
}

Result<uint16_t> Queue::availIdx(const GuestMemory& memory) const {
  NV_ASSIGN_OR_RETURN(uint16_t idx, memory.readObj<uint16_t>(avail_ring_.unchecked(2)));
  // Ring entries written before idx must be visible after we read idx.
  std::atomic_thread_fence(std::memory_order_acquire);
  return idx;
}

Result<uint16_t> Queue::pending(const GuestMemory& memory) const {
  NV_ASSIGN_OR_RETURN(uint16_t idx, availIdx(memory));
  auto count = static_cast<uint16_t>(idx - next_avail_);
  if (count > size_) {
    return broken(fmt::format("avail idx {} is {} entries ahead of the device (queue size {})",
                              idx, count, size_));
  }
  return count;
}

Result<std::optional<DescriptorChain>> Queue::pop(const GuestMemory& memory, uint16_t* bad_head) {
  if (!ready_) {
    return std::optional<DescriptorChain>();
  }
  NV_ASSIGN_OR_RETURN(uint16_t count, pending(memory));
  if (count == 0) {
    return std::optional<DescriptorChain>();
  }
  // Bounds: next_avail % size < size; the ring was validated to hold size entries.
  uint64_t slot = next_avail_ % size_;
  NV_ASSIGN_OR_RETURN(uint16_t head, memory.readObj<uint16_t>(avail_ring_.unchecked(
                                         kRingHeader + kAvailElem * slot)));
  ++next_avail_;
  if (bad_head != nullptr) {
    *bad_head = head;
  }
  if (head >= size_) {
    return broken(fmt::format("available ring names descriptor {} of a {}-entry queue", head,
                              size_));
  }
  DescriptorChain chain;
  chain.head = head;
  NV_TRY(walk(memory, head, chain));
  return std::optional<DescriptorChain>(std::move(chain));
}

Result<void> Queue::appendBuffer(const GuestMemory& memory, const VirtqDesc& desc,
                                 DescriptorChain& chain) const {
  bool writable = (desc.flags & kDescFlagWrite) != 0;
  if (!writable && !chain.descriptors.empty() && chain.descriptors.back().device_writable) {
    return broken("device-readable descriptor after a device-writable one");
  }
  GuestAddress addr(desc.addr);
  if (!addr.checkedAdd(desc.len)) {
    return broken(fmt::format("descriptor {:#x}+{:#x} wraps past 2^64", desc.addr, desc.len));
  }
  if (!memory.isRam(addr, desc.len)) {
    return broken(fmt::format("descriptor {:#x}+{:#x} is not guest RAM", desc.addr, desc.len));
  }
  chain.descriptors.push_back(Descriptor{addr, desc.len, writable});
  return {};
}

Result<void> Queue::walkIndirect(const GuestMemory& memory, const VirtqDesc& desc,
                                 DescriptorChain& chain, uint32_t& budget) const {
  // §2.7.5.3: the table is len/16 descriptors, must not itself be indirect, and a descriptor
  // with INDIRECT must not also have NEXT.
  if ((desc.flags & kDescFlagNext) != 0) {
    return broken("indirect descriptor also has the NEXT flag");
  }
  if (desc.len == 0 || desc.len % sizeof(VirtqDesc) != 0) {
    return broken(fmt::format("indirect table length {} is not a non-zero multiple of 16",
                              desc.len));
  }
  uint64_t entries = desc.len / sizeof(VirtqDesc);
  if (entries > budget) {
    return broken(fmt::format("indirect table of {} entries makes the chain longer than the "
                              "queue ({})", entries, size_));
  }
  GuestAddress table(desc.addr);
  if (desc.addr % 16 != 0 || !table.checkedAdd(desc.len) || !memory.isRam(table, desc.len)) {
    return broken(fmt::format("indirect table {:#x}+{:#x} is not aligned guest RAM", desc.addr,
                              desc.len));
  }
  uint64_t index = 0;
  for (;;) {
    if (budget == 0) {
      return broken("descriptor chain is longer than the queue (loop?)");
    }
    --budget;
    // Bounds: index < entries, so the entry lies inside the table checked above.
    NV_ASSIGN_OR_RETURN(VirtqDesc entry,
                        memory.readObj<VirtqDesc>(table.unchecked(index * sizeof(VirtqDesc))));
    if ((entry.flags & kDescFlagIndirect) != 0) {
      return broken("nested indirect descriptor");
    }
    NV_TRY(appendBuffer(memory, entry, chain));
    if ((entry.flags & kDescFlagNext) == 0) {
      return {};
    }
    if (entry.next >= entries) {
      return broken(fmt::format("indirect descriptor next {} outside a {}-entry table",
                                entry.next, entries));
    }
    index = entry.next;
  }
}

Result<void> Queue::walk(const GuestMemory& memory, uint16_t head, DescriptorChain& chain) const {
  // Total descriptors visited (direct + indirect) is bounded by the queue size: this is what
  // turns a `next` loop into an error instead of an endless walk.
  uint32_t budget = size_;
  uint16_t index = head;
  for (;;) {
    if (budget == 0) {
      return broken("descriptor chain is longer than the queue (loop?)");
    }
    --budget;
    // Bounds: index < size_ (checked by caller / below); table holds size_ entries.
    NV_ASSIGN_OR_RETURN(VirtqDesc desc,
                        memory.readObj<VirtqDesc>(desc_table_.unchecked(16ULL * index)));
    if ((desc.flags & kDescFlagIndirect) != 0) {
      // §2.7.5.3.2: zero or more direct descriptors followed by one indirect one (which may
      // not have NEXT, checked in walkIndirect); its WRITE flag is ignored.
      return walkIndirect(memory, desc, chain, budget);
    }
    NV_TRY(appendBuffer(memory, desc, chain));
    if ((desc.flags & kDescFlagNext) == 0) {
      return {};
    }
    if (desc.next >= size_) {
      return broken(fmt::format("descriptor next {} outside a {}-entry queue", desc.next, size_));
    }
    index = desc.next;
  }
}

Result<void> Queue::addUsed(const GuestMemory& memory, uint16_t head, uint32_t written) {
  if (head >= size_) {
    return fail(Errc::kInternal, fmt::format("used head {} outside queue of {}", head, size_));
  }
  uint64_t slot = next_used_ % size_;
  // Bounds: slot < size_; the used ring was validated to hold size_ elements.
  NV_TRY(memory.writeObj(used_ring_.unchecked(kRingHeader + kUsedElem * slot),
                         UsedElem{head, written}));
  ++next_used_;
  // The element must be visible before the index that publishes it.
  std::atomic_thread_fence(std::memory_order_release);
  return memory.writeObj(used_ring_.unchecked(2), next_used_);
}

Result<bool> Queue::needsInterrupt(const GuestMemory& memory) {
  // Order the used.idx store before reading the driver's suppression fields.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  uint16_t old = signalled_used_;
  uint16_t now = next_used_;
  bool valid = signalled_valid_;
  signalled_used_ = now;
  signalled_valid_ = true;
  if (event_idx_) {
    // used_event lives after the avail ring entries.
    NV_ASSIGN_OR_RETURN(uint16_t used_event, memory.readObj<uint16_t>(avail_ring_.unchecked(
                                                 kRingHeader + kAvailElem * size_)));
    if (!valid) {
      return true;
    }
    // vring_need_event(): interrupt iff used_event lies in (old, now].
    return static_cast<uint16_t>(now - used_event - 1) < static_cast<uint16_t>(now - old);
  }
  NV_ASSIGN_OR_RETURN(uint16_t flags, memory.readObj<uint16_t>(avail_ring_));
  return (flags & kAvailFlagNoInterrupt) == 0;
}

Result<bool> Queue::setNotification(const GuestMemory& memory, bool enable) {
  if (event_idx_) {
    if (enable) {
      // avail_event lives after the used ring elements.
      NV_TRY(memory.writeObj(used_ring_.unchecked(kRingHeader + kUsedElem * size_), next_avail_));
    }
  } else {
    NV_TRY(memory.writeObj(used_ring_, static_cast<uint16_t>(enable ? 0 : kUsedFlagNoNotify)));
  }
  if (!enable) {
    return false;
  }
  std::atomic_thread_fence(std::memory_order_seq_cst);
  NV_ASSIGN_OR_RETURN(uint16_t count, pending(memory));
  return count != 0;
}

}  // namespace nv::vmm::virtio
