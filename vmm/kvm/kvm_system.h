// SPDX-License-Identifier: Apache-2.0
// KvmSystem: /dev/kvm, its API version, capabilities and supported CPUID.
#pragma once

#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "vmm/hypervisor/cpu_state.h"

namespace nv::vmm::kvm {

// The open /dev/kvm. Created once per process on the main thread.
class KvmSystem {
 public:
  // Opens /dev/kvm, checks API version 12 and the capabilities the VMM needs.
  [[nodiscard]] static Result<KvmSystem> open(const char* path = "/dev/kvm");

  [[nodiscard]] int fd() const noexcept { return fd_.get(); }
  // KVM_CHECK_EXTENSION on the system fd.
  [[nodiscard]] int checkExtension(unsigned long cap) const;
  // KVM_GET_SUPPORTED_CPUID.
  [[nodiscard]] Result<std::vector<CpuidEntry>> supportedCpuid() const;
  // KVM_GET_VCPU_MMAP_SIZE.
  [[nodiscard]] Result<size_t> vcpuMmapSize() const;

 private:
  explicit KvmSystem(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

}  // namespace nv::vmm::kvm
