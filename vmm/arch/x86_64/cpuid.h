// SPDX-License-Identifier: Apache-2.0
// CPUID normalization per vCPU (APIC ids, topology, hypervisor bit), from the host's
// KVM_GET_SUPPORTED_CPUID list.
#pragma once

#include <cstdint>
#include <vector>

#include "vmm/hypervisor/cpu_state.h"

namespace nv::vmm::x86_64 {

// Returns `supported` adjusted for vCPU `index` of `count`: leaf 1 initial APIC id, CLFLUSH
// size, logical count, HTT iff count > 1, HYPERVISOR set, PDCM cleared; leaf 0xB x2APIC id
// and topology (one thread per core, `count` cores); leaf 0xA (PMU) zeroed.
[[nodiscard]] std::vector<CpuidEntry> filterCpuid(std::vector<CpuidEntry> supported,
                                                  uint32_t index, uint32_t count);

}  // namespace nv::vmm::x86_64
