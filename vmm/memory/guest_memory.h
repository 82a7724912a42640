// SPDX-License-Identifier: Apache-2.0
// GuestMemory: the only way device and boot code touch guest RAM; every access is bounds- and
// overflow-checked against the RAM regions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>
#include <vector>

#include "common/result.h"
#include "vmm/memory/guest_address.h"

namespace nv::vmm {

// One contiguous range of guest RAM and where it lives in this process.
struct GuestRegion {
  GuestAddress start;
  uint64_t size = 0;
  uint8_t* host = nullptr;  // `size` bytes, owned by the GuestMemory implementation
  int fd = -1;              // memfd backing it (or -1), for sharing with KVM / other processes
  uint64_t fd_offset = 0;

  [[nodiscard]] bool contains(GuestAddress addr, uint64_t len) const noexcept {
    // Bounds: addr >= start and len <= size - (addr - start), written so nothing can wrap.
    return addr >= start && addr.value() - start.value() <= size &&
           len <= size - (addr.value() - start.value());
  }
};

// Guest-physical RAM as a sorted list of non-overlapping regions, possibly with holes. Devices
// get it by reference and run on the device thread; vCPUs write RAM concurrently, so readers
// copy values out (readObj) rather than keeping references into guest memory.
class GuestMemory {
 public:
  virtual ~GuestMemory() = default;

  // The regions, sorted by start address.
  [[nodiscard]] virtual std::span<const GuestRegion> regions() const noexcept = 0;

  // Host bytes for [addr, addr + len), which must lie inside ONE region (a range crossing a
  // hole or a region boundary fails with kInvalidArgument). len 0 is allowed inside RAM.
  [[nodiscard]] Result<std::span<uint8_t>> slice(GuestAddress addr, uint64_t len) const;

  // True when [addr, addr + len) lies inside one region.
  [[nodiscard]] bool contains(GuestAddress addr, uint64_t len) const noexcept;

  // True when every byte of [addr, addr + len) is RAM (adjacent regions allowed, holes not).
  [[nodiscard]] bool isRam(GuestAddress addr, uint64_t len) const noexcept;

  // Host spans covering [addr, addr + len) in order (one per region touched), appended to
  // `out`; fails when the range leaves RAM. For scatter-gather I/O straight into guest pages.
  [[nodiscard]] Result<void> hostSpans(GuestAddress addr, uint64_t len,
                                       std::vector<std::span<uint8_t>>& out) const;

  // Copies between guest RAM and host buffers; the range may span several adjacent regions
  // but not a hole.
  [[nodiscard]] Result<void> read(GuestAddress addr, std::span<uint8_t> out) const;
  [[nodiscard]] Result<void> write(GuestAddress addr, std::span<const uint8_t> in) const;

  // Copies a trivially-copyable object in or out (little-endian host assumed: x86-64 only).
  template <class T>
  [[nodiscard]] Result<T> readObj(GuestAddress addr) const {
    static_assert(std::is_trivially_copyable_v<T>);
    T value{};
    NV_TRY(read(addr, std::span<uint8_t>(reinterpret_cast<uint8_t*>(&value), sizeof(T))));
    return value;
  }
  template <class T>
  [[nodiscard]] Result<void> writeObj(GuestAddress addr, const T& value) const {
    static_assert(std::is_trivially_copyable_v<T>);
    return write(addr,
                 std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&value), sizeof(T)));
  }

  // Total RAM bytes and the first address above all RAM.
  [[nodiscard]] uint64_t totalSize() const noexcept;
  [[nodiscard]] GuestAddress end() const noexcept;

 protected:
  // The region containing addr, or nullptr.
  [[nodiscard]] const GuestRegion* findRegion(GuestAddress addr) const noexcept;
};

}  // namespace nv::vmm
