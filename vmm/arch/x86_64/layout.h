// SPDX-License-Identifier: Apache-2.0
// The x86-64 guest physical memory map of nanovisor-vmm (documented in docs/vmm.md).
#pragma once

#include <cstdint>

namespace nv::vmm::x86_64 {

inline constexpr uint64_t kGdtAddr = 0x500;          // 4 entries
inline constexpr uint64_t kIdtAddr = 0x520;          // null IDT
inline constexpr uint64_t kPvhInfoAddr = 0x6000;     // hvm_start_info
inline constexpr uint64_t kPvhMemmapAddr = 0x6100;   // hvm_memmap_table_entry[]
inline constexpr uint64_t kPvhModlistAddr = 0x6040;  // hvm_modlist_entry (initramfs)
inline constexpr uint64_t kZeroPageAddr = 0x7000;    // boot_params
inline constexpr uint64_t kBootStackTop = 0x8FF0;
inline constexpr uint64_t kPml4Addr = 0x9000;
inline constexpr uint64_t kPdptAddr = 0xA000;
inline constexpr uint64_t kPdAddr = 0xB000;          // 4 pages: identity map of 4 GiB
inline constexpr uint64_t kIdentityMappedBytes = 4ULL << 30;
inline constexpr uint64_t kCmdlineAddr = 0x20000;
inline constexpr uint64_t kCmdlineMax = 4096;
inline constexpr uint64_t kEbdaStart = 0x9FC00;      // MP table lives here
inline constexpr uint64_t kHighMemStart = 0x100000;  // 1 MiB: kernels load at or above
inline constexpr uint64_t kMmioHoleStart = 0xC0000000;  // 3 GiB .. 4 GiB is not RAM
inline constexpr uint64_t kMmioHoleEnd = 0x100000000;
inline constexpr uint64_t kVirtioMmioBase = 0xD0000000;  // 4 KiB per device
inline constexpr uint32_t kVirtioIrqBase = 5;            // GSIs 5..23
inline constexpr uint32_t kMaxVirtioDevices = 19;
inline constexpr uint64_t kLapicAddr = 0xFEE00000;
inline constexpr uint64_t kIoapicAddr = 0xFEC00000;

}  // namespace nv::vmm::x86_64
