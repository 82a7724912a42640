// SPDX-License-Identifier: Apache-2.0
// Bounds-checked guest memory access shared by every GuestMemory implementation.
#include "vmm/memory/guest_memory.h"

#include <fmt/format.h>

#include <algorithm>

namespace nv::vmm {

const GuestRegion* GuestMemory::findRegion(GuestAddress addr) const noexcept {
  for (const GuestRegion& region : regions()) {
    if (addr >= region.start && addr.value() - region.start.value() < region.size) {
      return &region;
    }
  }
  return nullptr;
}

bool GuestMemory::contains(GuestAddress addr, uint64_t len) const noexcept {
  for (const GuestRegion& region : regions()) {
    if (region.contains(addr, len)) {
      return true;
    }
  }
  return false;
}

bool GuestMemory::isRam(GuestAddress addr, uint64_t len) const noexcept {
  uint64_t done = 0;
  while (done < len) {
    auto cur = addr.checkedAdd(done);
    const GuestRegion* region = cur ? findRegion(*cur) : nullptr;
    if (region == nullptr) {
      return false;
    }
    uint64_t offset = cur->value() - region->start.value();
    done += std::min<uint64_t>(region->size - offset, len - done);
  }
  return len != 0 || findRegion(addr) != nullptr;
}

Result<void> GuestMemory::hostSpans(GuestAddress addr, uint64_t len,
                                    std::vector<std::span<uint8_t>>& out) const {
  uint64_t done = 0;
  while (done < len) {
    auto cur = addr.checkedAdd(done);
    const GuestRegion* region = cur ? findRegion(*cur) : nullptr;
    if (region == nullptr) {
      return fail(Errc::kInvalidArgument,
                  fmt::format("guest range {:#x}+{:#x} leaves guest RAM", addr.value(), len));
    }
    // Bounds: cur is inside region; chunk <= size - offset.
    uint64_t offset = cur->value() - region->start.value();
    uint64_t chunk = std::min<uint64_t>(region->size - offset, len - done);
    out.emplace_back(region->host + offset, static_cast<size_t>(chunk));
    done += chunk;
  }
  return {};
}

Result<std::span<uint8_t>> GuestMemory::slice(GuestAddress addr, uint64_t len) const {
  for (const GuestRegion& region : regions()) {
    if (region.contains(addr, len)) {
      // Bounds: region.contains() proved addr - start + len <= region.size.
      uint64_t offset = addr.value() - region.start.value();
      return std::span<uint8_t>(region.host + offset, static_cast<size_t>(len));
    }
  }
  return fail(Errc::kInvalidArgument,
              fmt::format("guest range {:#x}+{:#x} is not inside guest RAM", addr.value(), len));
}

Result<void> GuestMemory::read(GuestAddress addr, std::span<uint8_t> out) const {
  uint64_t done = 0;
  while (done < out.size()) {
    auto cur = addr.checkedAdd(done);
    const GuestRegion* region = cur ? findRegion(*cur) : nullptr;
    if (region == nullptr) {
      return fail(Errc::kInvalidArgument, fmt::format("guest read {:#x}+{:#x} leaves guest RAM",
                                                      addr.value(), out.size()));
    }
    // Bounds: cur is inside region, so offset < size and chunk <= size - offset.
    uint64_t offset = cur->value() - region->start.value();
    uint64_t chunk = std::min<uint64_t>(region->size - offset, out.size() - done);
    std::memcpy(out.data() + done, region->host + offset, static_cast<size_t>(chunk));
    done += chunk;
  }
  return {};
}

Result<void> GuestMemory::write(GuestAddress addr, std::span<const uint8_t> in) const {
  uint64_t done = 0;
  while (done < in.size()) {
    auto cur = addr.checkedAdd(done);
    const GuestRegion* region = cur ? findRegion(*cur) : nullptr;
    if (region == nullptr) {
      return fail(Errc::kInvalidArgument, fmt::format("guest write {:#x}+{:#x} leaves guest RAM",
                                                      addr.value(), in.size()));
    }
    // Bounds: as in read().
    uint64_t offset = cur->value() - region->start.value();
    uint64_t chunk = std::min<uint64_t>(region->size - offset, in.size() - done);
    std::memcpy(region->host + offset, in.data() + done, static_cast<size_t>(chunk));
    done += chunk;
  }
  return {};
}

uint64_t GuestMemory::totalSize() const noexcept {
  uint64_t total = 0;
  for (const GuestRegion& region : regions()) {
    total += region.size;
  }
  return total;
}

GuestAddress GuestMemory::end() const noexcept {
  auto all = regions();
  if (all.empty()) {
    return GuestAddress(0);
  }
  return all.back().start.unchecked(all.back().size);
}

}  // namespace nv::vmm
