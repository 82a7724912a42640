// SPDX-License-Identifier: Apache-2.0
// C-layout views of the variable-length KVM structures. The uapi headers declare their
// flexible arrays with __DECLARE_FLEX_ARRAY, which in C++ adds an empty struct member and
// changes sizeof() and the array offset (kvm_cpuid2 becomes 12 bytes, kvm_msrs 16), and with
// them the ioctl numbers. These headers restore the C ABI (8-byte header, entries at 8).
#pragma once

#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <cstddef>
#include <cstdint>

namespace nv::vmm::kvm::abi {

struct CpuidHeader {
  uint32_t nent;
  uint32_t padding;
};
struct MsrsHeader {
  uint32_t nmsrs;
  uint32_t pad;
};
static_assert(sizeof(CpuidHeader) == 8 && sizeof(MsrsHeader) == 8);

inline constexpr unsigned long kGetSupportedCpuid = _IOWR(KVMIO, 0x05, CpuidHeader);
inline constexpr unsigned long kSetCpuid2 = _IOW(KVMIO, 0x90, CpuidHeader);
inline constexpr unsigned long kSetMsrs = _IOW(KVMIO, 0x89, MsrsHeader);

}  // namespace nv::vmm::kvm::abi
