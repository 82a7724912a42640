// SPDX-License-Identifier: Apache-2.0
// /dev/kvm access.
#include "vmm/kvm/kvm_system.h"

#include "vmm/kvm/kvm_abi.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <fmt/format.h>

#include <memory>

namespace nv::vmm::kvm {

Result<KvmSystem> KvmSystem::open(const char* path) {
  UniqueFd fd(::open(path, O_RDWR | O_CLOEXEC));
  if (!fd) {
    return failErrno(fmt::format("open {}", path));
  }
  int version = ::ioctl(fd.get(), KVM_GET_API_VERSION, 0);
  if (version != KVM_API_VERSION) {
    return fail(Errc::kUnsupported, fmt::format("KVM API version {} (want {})", version,
                                                KVM_API_VERSION));
  }
  KvmSystem system(std::move(fd));
  struct Cap {
    unsigned long cap;
    const char* name;
  };
  static constexpr Cap kRequired[] = {
      {KVM_CAP_IRQCHIP, "IRQCHIP"},         {KVM_CAP_IOEVENTFD, "IOEVENTFD"},
      {KVM_CAP_IRQFD, "IRQFD"},             {KVM_CAP_USER_MEMORY, "USER_MEMORY"},
      {KVM_CAP_SET_TSS_ADDR, "SET_TSS_ADDR"}, {KVM_CAP_PIT2, "PIT2"},
      {KVM_CAP_EXT_CPUID, "EXT_CPUID"},     {KVM_CAP_MP_STATE, "MP_STATE"},
      {KVM_CAP_IMMEDIATE_EXIT, "IMMEDIATE_EXIT"},
  };
  for (const Cap& cap : kRequired) {
    if (system.checkExtension(cap.cap) <= 0) {
      return fail(Errc::kUnsupported, fmt::format("KVM lacks capability {}", cap.name));
    }
  }
  return system;
}

int KvmSystem::checkExtension(unsigned long cap) const {
  return ::ioctl(fd_.get(), KVM_CHECK_EXTENSION, cap);
}

Result<std::vector<CpuidEntry>> KvmSystem::supportedCpuid() const {
  constexpr uint32_t kMaxEntries = 256;
  size_t bytes = sizeof(abi::CpuidHeader) + kMaxEntries * sizeof(kvm_cpuid_entry2);
  auto buffer = std::make_unique<uint64_t[]>(bytes / sizeof(uint64_t) + 1);
  auto* header = reinterpret_cast<abi::CpuidHeader*>(buffer.get());
  auto* entries = reinterpret_cast<kvm_cpuid_entry2*>(header + 1);
  header->nent = kMaxEntries;
  if (::ioctl(fd_.get(), abi::kGetSupportedCpuid, header) != 0) {
    return failErrno("KVM_GET_SUPPORTED_CPUID");
  }
  std::vector<CpuidEntry> out;
  for (uint32_t i = 0; i < header->nent && i < kMaxEntries; ++i) {
    const kvm_cpuid_entry2& e = entries[i];
    out.push_back(CpuidEntry{e.function, e.index, e.flags, e.eax, e.ebx, e.ecx, e.edx});
  }
  return out;
}

Result<size_t> KvmSystem::vcpuMmapSize() const {
  int size = ::ioctl(fd_.get(), KVM_GET_VCPU_MMAP_SIZE, 0);
  if (size <= 0) {
    return failErrno("KVM_GET_VCPU_MMAP_SIZE");
  }
  return static_cast<size_t>(size);
}

}  // namespace nv::vmm::kvm
