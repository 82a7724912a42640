// SPDX-License-Identifier: Apache-2.0
// Boot structures in guest memory: the RAM layout, the e820 map, the Linux zero page and
// cmdline, and the PVH start info.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "vmm/memory/guest_memory.h"
#include "vmm/memory/guest_memory_mmap.h"

namespace nv::vmm::x86_64 {

// RAM regions for `bytes` of guest memory: below the 3 GiB MMIO hole, the rest from 4 GiB.
[[nodiscard]] std::vector<RegionSpec> ramLayout(uint64_t bytes);

struct E820Entry {
  uint64_t addr;
  uint64_t size;
  uint32_t type;  // 1 RAM, 2 reserved
};
inline constexpr uint32_t kE820Ram = 1;
inline constexpr uint32_t kE820Reserved = 2;

// The e820 map for `memory`: [0, EBDA) RAM, EBDA..640K reserved, then RAM from 1 MiB.
[[nodiscard]] std::vector<E820Entry> buildE820(const GuestMemory& memory);

struct Initramfs {
  uint64_t addr;
  uint64_t size;
};

// Where an initramfs of `size` bytes goes: page-aligned at the top of low RAM (below the hole
// and below 4 GiB so the 32-bit boot_params fields can hold it).
[[nodiscard]] Result<uint64_t> initramfsAddress(const GuestMemory& memory, uint64_t size);

// Writes the NUL-terminated cmdline at kCmdlineAddr.
[[nodiscard]] Result<void> writeCmdline(const GuestMemory& memory, std::string_view cmdline);

// Writes the zero page (boot_params) at kZeroPageAddr: HdrS, boot flag, loader 0xFF, cmdline
// pointer/size, kernel alignment, e820 table and the initramfs if any.
[[nodiscard]] Result<void> writeZeroPage(const GuestMemory& memory, std::string_view cmdline,
                                         std::optional<Initramfs> initramfs);

// Writes hvm_start_info (magic 0x336ec578, version 1) at kPvhInfoAddr with the memmap and the
// initramfs as module 0.
[[nodiscard]] Result<void> writePvhStartInfo(const GuestMemory& memory,
                                             std::optional<Initramfs> initramfs);

}  // namespace nv::vmm::x86_64
