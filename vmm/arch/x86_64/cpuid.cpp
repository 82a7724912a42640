// SPDX-License-Identifier: Apache-2.0
// CPUID normalization (after Firecracker's cpuid-normalization.md).
#include "vmm/arch/x86_64/cpuid.h"

#include <bit>

namespace nv::vmm::x86_64 {

std::vector<CpuidEntry> filterCpuid(std::vector<CpuidEntry> supported, uint32_t index,
                                    uint32_t count) {
  uint32_t core_bits = count <= 1 ? 0 : static_cast<uint32_t>(std::bit_width(count - 1));
  for (CpuidEntry& e : supported) {
    switch (e.function) {
      case 0x1:
        e.ebx = (e.ebx & 0x000000FF) | (8U << 8) | ((count & 0xFF) << 16) | (index << 24);
        e.ecx &= ~(1U << 15);  // PDCM
        e.ecx |= 1U << 31;     // HYPERVISOR
        if (count > 1) {
          e.edx |= 1U << 28;  // HTT
        } else {
          e.edx &= ~(1U << 28);
        }
        break;
      case 0xA:
        e.eax = e.ebx = e.ecx = e.edx = 0;
        break;
      case 0xB:
      case 0x1F:
        e.edx = index;
        if (e.index == 0) {  // SMT level: one thread per core
          e.eax = 0;
          e.ebx = 1;
          e.ecx = (1U << 8) | 0;
        } else if (e.index == 1) {  // core level
          e.eax = core_bits;
          e.ebx = count;
          e.ecx = (2U << 8) | 1;
        } else {
          e.eax = e.ebx = 0;
          e.ecx = e.index;
        }
        break;
      default:
        break;
    }
  }
  return supported;
}

}  // namespace nv::vmm::x86_64
