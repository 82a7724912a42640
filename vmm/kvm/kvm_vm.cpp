// SPDX-License-Identifier: Apache-2.0
// KVM VM setup ioctls.
#include "vmm/kvm/kvm_vm.h"

#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <fmt/format.h>

namespace nv::vmm::kvm {

Result<KvmVm> KvmVm::create(const KvmSystem& system) {
  NV_ASSIGN_OR_RETURN(size_t run_size, system.vcpuMmapSize());
  UniqueFd fd(::ioctl(system.fd(), KVM_CREATE_VM, 0));
  if (!fd) {
    return failErrno("KVM_CREATE_VM");
  }
  uint64_t identity = kIdentityMapAddr;
  if (::ioctl(fd.get(), KVM_SET_IDENTITY_MAP_ADDR, &identity) != 0) {
    return failErrno("KVM_SET_IDENTITY_MAP_ADDR");
  }
  if (::ioctl(fd.get(), KVM_SET_TSS_ADDR, static_cast<unsigned long>(kTssAddr)) != 0) {
    return failErrno("KVM_SET_TSS_ADDR");
  }
  if (::ioctl(fd.get(), KVM_CREATE_IRQCHIP, 0) != 0) {
    return failErrno("KVM_CREATE_IRQCHIP");
  }
  kvm_pit_config pit{};
  pit.flags = KVM_PIT_SPEAKER_DUMMY;
  if (::ioctl(fd.get(), KVM_CREATE_PIT2, &pit) != 0) {
    return failErrno("KVM_CREATE_PIT2");
  }
  return KvmVm(std::move(fd), run_size);
}

Result<void> KvmVm::mapMemory(const GuestMemory& memory) {
  uint32_t slot = 0;
  for (const GuestRegion& region : memory.regions()) {
    kvm_userspace_memory_region mem{};
    mem.slot = slot++;
    mem.guest_phys_addr = region.start.value();
    mem.memory_size = region.size;
    mem.userspace_addr = reinterpret_cast<uint64_t>(region.host);
    if (::ioctl(fd_.get(), KVM_SET_USER_MEMORY_REGION, &mem) != 0) {
      return failErrno(fmt::format("KVM_SET_USER_MEMORY_REGION {:#x}+{:#x}",
                                   region.start.value(), region.size));
    }
  }
  return {};
}

Result<void> KvmVm::registerIrqfd(int event_fd, uint32_t gsi) {
  kvm_irqfd irqfd{};
  irqfd.fd = static_cast<uint32_t>(event_fd);
  irqfd.gsi = gsi;
  if (::ioctl(fd_.get(), KVM_IRQFD, &irqfd) != 0) {
    return failErrno(fmt::format("KVM_IRQFD gsi {}", gsi));
  }
  return {};
}

Result<void> KvmVm::registerIoeventfd(int event_fd, uint64_t addr,
                                      std::optional<uint32_t> datamatch) {
  kvm_ioeventfd io{};
  io.addr = addr;
  io.len = 4;
  io.fd = event_fd;
  if (datamatch) {
    io.datamatch = *datamatch;
    io.flags = KVM_IOEVENTFD_FLAG_DATAMATCH;
  }
  if (::ioctl(fd_.get(), KVM_IOEVENTFD, &io) != 0) {
    return failErrno(fmt::format("KVM_IOEVENTFD {:#x}", addr));
  }
  return {};
}

Result<std::unique_ptr<KvmVcpu>> KvmVm::createVcpu(uint32_t id) {
  UniqueFd fd(::ioctl(fd_.get(), KVM_CREATE_VCPU, static_cast<unsigned long>(id)));
  if (!fd) {
    return failErrno(fmt::format("KVM_CREATE_VCPU {}", id));
  }
  NV_ASSIGN_OR_RETURN(MappedRegion run,
                      MappedRegion::fromFd(fd.get(), run_size_, 0, PROT_READ | PROT_WRITE));
  return std::make_unique<KvmVcpu>(std::move(fd), std::move(run), id);
}

}  // namespace nv::vmm::kvm
