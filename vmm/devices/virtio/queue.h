// SPDX-License-Identifier: Apache-2.0
// Split virtqueue, virtio 1.2 §2.7: descriptor chain walking (direct and indirect), used ring
// updates and notification suppression (VIRTIO_F_EVENT_IDX), all checked against a hostile guest.
//
// Primer: the driver owns the descriptor table (16-byte entries) and the available ring
// (flags, idx, ring[size], used_event); the device owns the used ring (flags, idx,
// ring[size] of {id, len}, avail_event). Indices are free-running u16 counters taken modulo
// the queue size. Every value read from guest memory here is untrusted: indices, addresses,
// lengths and flags are validated before use, and chains are bounded by the queue size so a
// loop in `next` links cannot spin the device.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "common/result.h"
#include "vmm/memory/guest_memory.h"

namespace nv::vmm::virtio {

// Descriptor table entry as laid out in guest memory (virtq_desc).
struct VirtqDesc {
  uint64_t addr;
  uint32_t len;
  uint16_t flags;
  uint16_t next;
};
static_assert(sizeof(VirtqDesc) == 16);

inline constexpr uint16_t kDescFlagNext = 1;
inline constexpr uint16_t kDescFlagWrite = 2;
inline constexpr uint16_t kDescFlagIndirect = 4;
inline constexpr uint16_t kAvailFlagNoInterrupt = 1;
inline constexpr uint16_t kUsedFlagNoNotify = 1;
inline constexpr uint16_t kMaxQueueSize = 32768;  // virtio 1.2 §2.7: at most 2^15

// One validated buffer of a chain: [addr, addr + len) is guest RAM (no hole, no wrap).
struct Descriptor {
  GuestAddress addr;
  uint32_t len = 0;
  bool device_writable = false;
};

// A validated descriptor chain: the head index (returned in the used ring) and its buffers in
// order. The device-readable buffers all precede the device-writable ones (§2.7.4.2).
struct DescriptorChain {
  uint16_t head = 0;
  std::vector<Descriptor> descriptors;

  [[nodiscard]] uint64_t readableBytes() const noexcept;
  [[nodiscard]] uint64_t writableBytes() const noexcept;
};

// One split virtqueue. The transport fills in size and ring addresses while the driver sets it
// up; the device thread then pops chains and pushes used entries. Not thread-safe: all calls
// after activation come from the device thread.
class Queue {
 public:
  explicit Queue(uint16_t max_size) : max_size_(max_size), size_(max_size) {}

  // --- configuration (transport, before the device is activated) ---
  [[nodiscard]] uint16_t maxSize() const noexcept { return max_size_; }
  [[nodiscard]] uint16_t size() const noexcept { return size_; }
  void setSize(uint16_t size) noexcept { size_ = size; }
  void setReady(bool ready) noexcept { ready_ = ready; }
  [[nodiscard]] bool ready() const noexcept { return ready_; }
  void setDescTable(GuestAddress addr) noexcept { desc_table_ = addr; }
  void setAvailRing(GuestAddress addr) noexcept { avail_ring_ = addr; }
  void setUsedRing(GuestAddress addr) noexcept { used_ring_ = addr; }
  [[nodiscard]] GuestAddress descTable() const noexcept { return desc_table_; }
  [[nodiscard]] GuestAddress availRing() const noexcept { return avail_ring_; }
  [[nodiscard]] GuestAddress usedRing() const noexcept { return used_ring_; }
  // Whether VIRTIO_F_EVENT_IDX was negotiated.
  void setEventIdx(bool enabled) noexcept { event_idx_ = enabled; }

  // Checks size (power of two, 1..max) and that the three rings are aligned and in RAM.
  [[nodiscard]] Result<void> validate(const GuestMemory& memory) const;

  // Back to the state after device reset (size = max, not ready, addresses 0, indices 0).
  void reset() noexcept;

  // --- processing (device thread) ---
  // The next available chain, nullopt when the ring is empty, or an error when the driver
  // broke the protocol (the caller should then mark the device NEEDS_RESET). A chain that
  // fails validation is consumed (next_avail advances) so a caller that chooses to complete it
  // with an error status can do so with the returned head in `bad_head`.
  [[nodiscard]] Result<std::optional<DescriptorChain>> pop(const GuestMemory& memory,
                                                           uint16_t* bad_head = nullptr);

  // Gives back the last popped chain (the device found nothing to put in it); it will be
  // popped again next time.
  void undoPop() noexcept { --next_avail_; }

  // Puts `head` back at the end of the used ring with `written` bytes and publishes used.idx.
  [[nodiscard]] Result<void> addUsed(const GuestMemory& memory, uint16_t head, uint32_t written);

  // Whether the driver wants an interrupt for the used entries added since the last call that
  // returned true (event idx: vring_need_event; otherwise !NO_INTERRUPT).
  [[nodiscard]] Result<bool> needsInterrupt(const GuestMemory& memory);

  // Asks the driver to notify (or not) about new available buffers: avail_event with event
  // idx, used.flags NO_NOTIFY without. Returns true when, after enabling, buffers are already
  // available (caller should process again to close the race).
  [[nodiscard]] Result<bool> setNotification(const GuestMemory& memory, bool enable);

  // Entries the driver has made available that the device has not popped yet.
  [[nodiscard]] Result<uint16_t> pending(const GuestMemory& memory) const;

  [[nodiscard]] uint16_t nextAvail() const noexcept { return next_avail_; }
  [[nodiscard]] uint16_t nextUsed() const noexcept { return next_used_; }
  // For tests and restore: start the free-running counters at `value` (exercises u16 wrap).
  void setIndices(uint16_t next_avail, uint16_t next_used) noexcept {
    next_avail_ = next_avail;
    next_used_ = next_used;
    signalled_used_ = next_used;
  }

 private:
  [[nodiscard]] Result<uint16_t> availIdx(const GuestMemory& memory) const;
  [[nodiscard]] Result<void> walk(const GuestMemory& memory, uint16_t head,
                                  DescriptorChain& chain) const;
  [[nodiscard]] Result<void> walkIndirect(const GuestMemory& memory, const VirtqDesc& desc,
                                          DescriptorChain& chain, uint32_t& budget) const;
  [[nodiscard]] Result<void> appendBuffer(const GuestMemory& memory, const VirtqDesc& desc,
                                          DescriptorChain& chain) const;

  uint16_t max_size_;
  uint16_t size_;
  bool ready_ = false;
  bool event_idx_ = false;
  GuestAddress desc_table_{};
  GuestAddress avail_ring_{};
  GuestAddress used_ring_{};
  uint16_t next_avail_ = 0;
  uint16_t next_used_ = 0;
  uint16_t signalled_used_ = 0;  // used.idx at the last interrupt decision
  bool signalled_valid_ = false;
};

}  // namespace nv::vmm::virtio
