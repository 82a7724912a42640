// SPDX-License-Identifier: Apache-2.0
// MP table (Intel MultiProcessor Specification 1.4) at the EBDA, for SMP without ACPI.
#pragma once

#include <cstdint>

#include "common/result.h"
#include "vmm/memory/guest_memory.h"

namespace nv::vmm::x86_64 {

inline constexpr uint32_t kMaxMpCpus = 254;

// Writes the floating pointer and the configuration table (one processor entry per vCPU, ISA
// bus, IOAPIC, 24 interrupt sources, LINT0 ExtINT / LINT1 NMI) at kEbdaStart.
[[nodiscard]] Result<void> writeMpTable(const GuestMemory& memory, uint32_t num_cpus);

}  // namespace nv::vmm::x86_64
