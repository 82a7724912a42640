// SPDX-License-Identifier: Apache-2.0
// GuestMemoryMmap: guest RAM backed by one memfd, mapped shared into this process.
#pragma once

#include <vector>

#include "common/mapped_region.h"
#include "common/unique_fd.h"
#include "vmm/memory/guest_memory.h"

namespace nv::vmm {

// A guest RAM range requested by the machine layout.
struct RegionSpec {
  GuestAddress start;
  uint64_t size = 0;
};

// Guest RAM in a memfd (so it can later be shared with another process or snapshotted). Each
// region is a shared mapping of its own slice of the memfd. Owned by the Vmm; outlives vCPUs.
class GuestMemoryMmap final : public GuestMemory {
 public:
  // Regions must be page-aligned, non-empty, sorted and non-overlapping.
  [[nodiscard]] static Result<GuestMemoryMmap> create(const std::vector<RegionSpec>& specs);

  [[nodiscard]] std::span<const GuestRegion> regions() const noexcept override {
    return regions_;
  }
  [[nodiscard]] int fd() const noexcept { return memfd_.get(); }

 private:
  GuestMemoryMmap() = default;
  UniqueFd memfd_;
  std::vector<MappedRegion> mappings_;
  std::vector<GuestRegion> regions_;
};

}  // namespace nv::vmm
