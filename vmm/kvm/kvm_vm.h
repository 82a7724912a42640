// SPDX-License-Identifier: Apache-2.0
// KvmVm: one KVM virtual machine: memory slots, in-kernel irqchip + PIT, irqfd, ioeventfd.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include "common/result.h"
#include "common/unique_fd.h"
#include "vmm/kvm/kvm_system.h"
#include "vmm/kvm/kvm_vcpu.h"
#include "vmm/memory/guest_memory.h"

namespace nv::vmm::kvm {

// Owned by the Vmm; set up on the main thread in the order of vmm-anchors §2.7 (TSS and
// identity map, irqchip, PIT, then vCPUs); irqfd/ioeventfd registration is thread-safe.
class KvmVm {
 public:
  static constexpr uint64_t kIdentityMapAddr = 0xFFFBC000;
  static constexpr uint64_t kTssAddr = 0xFFFBD000;

  // KVM_CREATE_VM, identity map + TSS, in-kernel irqchip and PIT2 (speaker dummy).
  [[nodiscard]] static Result<KvmVm> create(const KvmSystem& system);

  // Registers every region of `memory` as a memory slot (slot = region index).
  [[nodiscard]] Result<void> mapMemory(const GuestMemory& memory);
  // KVM_IRQFD: writes to `event_fd` raise GSI `gsi`.
  [[nodiscard]] Result<void> registerIrqfd(int event_fd, uint32_t gsi);
  // KVM_IOEVENTFD on an MMIO address (4-byte writes, optionally only of `datamatch`).
  [[nodiscard]] Result<void> registerIoeventfd(int event_fd, uint64_t addr,
                                               std::optional<uint32_t> datamatch);
  // KVM_CREATE_VCPU + mapping of its kvm_run page.
  [[nodiscard]] Result<std::unique_ptr<KvmVcpu>> createVcpu(uint32_t id);

  [[nodiscard]] int fd() const noexcept { return fd_.get(); }

 private:
  KvmVm(UniqueFd fd, size_t run_size) : fd_(std::move(fd)), run_size_(run_size) {}
  UniqueFd fd_;
  size_t run_size_;
};

}  // namespace nv::vmm::kvm
