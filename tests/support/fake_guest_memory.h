// SPDX-License-Identifier: Apache-2.0
// FakeGuestMemory: guest RAM in std::vectors for unit tests, optionally two regions around a hole.
#pragma once

#include <cstdint>
#include <vector>

#include "vmm/memory/guest_memory.h"

namespace nv::vmm::testing {

// One or two RAM regions held in vectors. With two regions the range between them is a hole
// (not RAM), so tests can build descriptor chains or buffers that cross it.
class FakeGuestMemory final : public GuestMemory {
 public:
  explicit FakeGuestMemory(uint64_t size, uint64_t start = 0) { addRegion(start, size); }
  FakeGuestMemory(uint64_t start0, uint64_t size0, uint64_t start1, uint64_t size1) {
    addRegion(start0, size0);
    addRegion(start1, size1);
  }
  FakeGuestMemory(const FakeGuestMemory&) = delete;
  FakeGuestMemory& operator=(const FakeGuestMemory&) = delete;

  [[nodiscard]] std::span<const GuestRegion> regions() const noexcept override {
    return regions_;
  }

  // Direct access for test setup; asserts nothing (tests control the addresses).
  uint8_t* at(uint64_t gpa) {
    for (auto& region : regions_) {
      if (gpa >= region.start.value() && gpa < region.start.value() + region.size) {
        return region.host + (gpa - region.start.value());
      }
    }
    return nullptr;
  }

 private:
  void addRegion(uint64_t start, uint64_t size) {
    // Moving the outer vector keeps each inner buffer where it is, so `host` stays valid.
    storage_.emplace_back(size, 0);
    regions_.push_back(GuestRegion{.start = GuestAddress(start),
                                   .size = size,
                                   .host = storage_.back().data()});
  }
  std::vector<std::vector<uint8_t>> storage_{};
  std::vector<GuestRegion> regions_{};
};

}  // namespace nv::vmm::testing
