// SPDX-License-Identifier: Apache-2.0
// Initial vCPU state for direct kernel boot: GDT, identity page tables, segment and control
// registers for the Linux 64-bit boot protocol or PVH, boot MSRs.
#pragma once

#include <cstdint>
#include <vector>

#include "common/result.h"
#include "vmm/hypervisor/cpu_state.h"
#include "vmm/memory/guest_memory.h"

namespace nv::vmm::x86_64 {

// A GDT descriptor from flags (access byte | flags nibble << 12), base and 20-bit limit.
[[nodiscard]] constexpr uint64_t gdtEntry(uint16_t flags, uint32_t base, uint32_t limit) {
  return ((static_cast<uint64_t>(base) & 0xFF000000ULL) << 32) |
         ((static_cast<uint64_t>(flags) & 0x0000F0FFULL) << 40) |
         ((static_cast<uint64_t>(limit) & 0x000F0000ULL) << 32) |
         ((static_cast<uint64_t>(base) & 0x00FFFFFFULL) << 16) |
         (static_cast<uint64_t>(limit) & 0x0000FFFFULL);
}

// The cached segment a selector `index` loads from descriptor `entry`.
[[nodiscard]] Segment segmentFromGdt(uint64_t entry, uint16_t index);

enum class BootMode { kLinux64, kPvh };

// Writes the GDT (null, code, data, TSS) and a null IDT; for kLinux64 also identity page
// tables for the first 4 GiB (2 MiB pages).
[[nodiscard]] Result<void> writeBootTables(const GuestMemory& memory, BootMode mode);

// Special registers for `mode`, starting from `base` (KVM's reset state).
[[nodiscard]] SpecialRegisters bootSregs(const SpecialRegisters& base, BootMode mode);

// General registers: entry point, stack, boot_params (RSI) or start info (RBX).
[[nodiscard]] Registers bootRegs(uint64_t entry, BootMode mode);

// MSRs set at boot (SYSENTER/STAR/LSTAR zeroed, fast strings, MTRR default write-back).
[[nodiscard]] std::vector<MsrEntry> bootMsrs();

}  // namespace nv::vmm::x86_64
