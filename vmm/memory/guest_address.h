// SPDX-License-Identifier: Apache-2.0
// GuestAddress: a guest-physical address as a strong type, with overflow-checked arithmetic.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>

namespace nv::vmm {

// A guest-physical address. Distinct from host pointers and plain integers so the two are never
// mixed up; arithmetic that could wrap returns std::nullopt instead.
class GuestAddress {
 public:
  constexpr GuestAddress() = default;
  constexpr explicit GuestAddress(uint64_t value) : value_(value) {}

  [[nodiscard]] constexpr uint64_t value() const noexcept { return value_; }

  // this + offset, or nullopt when it would pass 2^64.
  [[nodiscard]] constexpr std::optional<GuestAddress> checkedAdd(uint64_t offset) const noexcept {
    uint64_t out = 0;
    if (__builtin_add_overflow(value_, offset, &out)) {
      return std::nullopt;
    }
    return GuestAddress(out);
  }
  // this + offset for offsets known not to wrap (callers checked the range first).
  [[nodiscard]] constexpr GuestAddress unchecked(uint64_t offset) const noexcept {
    return GuestAddress(value_ + offset);
  }

  constexpr auto operator<=>(const GuestAddress&) const = default;

 private:
  uint64_t value_ = 0;
};

}  // namespace nv::vmm
