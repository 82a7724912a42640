// SPDX-License-Identifier: Apache-2.0
// memfd-backed guest RAM.
#include "vmm/memory/guest_memory_mmap.h"

#include <sys/mman.h>
#include <unistd.h>

#include <fmt/format.h>

namespace nv::vmm {
namespace {
constexpr uint64_t kPageSize = 4096;
}  // namespace

Result<GuestMemoryMmap> GuestMemoryMmap::create(const std::vector<RegionSpec>& specs) {
  if (specs.empty()) {
    return fail(Errc::kInvalidArgument, "guest memory needs at least one region");
  }
  uint64_t total = 0;
  for (size_t i = 0; i < specs.size(); ++i) {
    const RegionSpec& spec = specs[i];
    if (spec.size == 0 || spec.size % kPageSize != 0 || spec.start.value() % kPageSize != 0) {
      return fail(Errc::kInvalidArgument,
                  fmt::format("guest memory region {:#x}+{:#x} is empty or not page aligned",
                              spec.start.value(), spec.size));
    }
    if (!spec.start.checkedAdd(spec.size)) {
      return fail(Errc::kInvalidArgument, "guest memory region wraps past 2^64");
    }
    if (i > 0 && specs[i - 1].start.unchecked(specs[i - 1].size) > spec.start) {
      return fail(Errc::kInvalidArgument, "guest memory regions overlap or are unsorted");
    }
    if (__builtin_add_overflow(total, spec.size, &total)) {
      return fail(Errc::kInvalidArgument, "guest memory size overflows");
    }
  }
  GuestMemoryMmap memory;
  memory.memfd_ = UniqueFd(::memfd_create("nanovisor-guest-ram", MFD_CLOEXEC));
  if (!memory.memfd_) {
    return failErrno("memfd_create for guest RAM");
  }
  if (::ftruncate(memory.memfd_.get(), static_cast<off_t>(total)) != 0) {
    return failErrno(fmt::format("size guest RAM memfd to {} bytes", total));
  }
  uint64_t offset = 0;
  for (const RegionSpec& spec : specs) {
    NV_ASSIGN_OR_RETURN(MappedRegion mapping,
                        MappedRegion::fromFd(memory.memfd_.get(), static_cast<size_t>(spec.size),
                                             static_cast<int64_t>(offset), PROT_READ | PROT_WRITE));
    memory.regions_.push_back(GuestRegion{.start = spec.start,
                                          .size = spec.size,
                                          .host = mapping.data(),
                                          .fd = memory.memfd_.get(),
                                          .fd_offset = offset});
    memory.mappings_.push_back(std::move(mapping));
    offset += spec.size;
  }
  return memory;
}

}  // namespace nv::vmm
