// SPDX-License-Identifier: Apache-2.0
// KvmVcpu: one KVM vCPU fd and its kvm_run page; runs the guest and decodes exits.
#pragma once

#include <cstdint>
#include <vector>

#include "common/mapped_region.h"
#include "common/result.h"
#include "common/unique_fd.h"
#include "vmm/hypervisor/cpu_state.h"
#include "vmm/hypervisor/vcpu_exit.h"

namespace nv::vmm::kvm {

// Configured on the main thread, then used only by its vCPU thread — except
// setImmediateExit(), which other threads call to kick it out of run().
class KvmVcpu {
 public:
  KvmVcpu(UniqueFd fd, MappedRegion run, uint32_t id)
      : fd_(std::move(fd)), run_(std::move(run)), id_(id) {}

  [[nodiscard]] uint32_t id() const noexcept { return id_; }
  [[nodiscard]] Result<Registers> getRegs() const;
  [[nodiscard]] Result<void> setRegs(const Registers& regs) const;
  [[nodiscard]] Result<SpecialRegisters> getSregs() const;
  [[nodiscard]] Result<void> setSregs(const SpecialRegisters& sregs) const;
  // x87 control word 0x37F and MXCSR 0x1F80, as after reset.
  [[nodiscard]] Result<void> setDefaultFpu() const;
  [[nodiscard]] Result<void> setMsrs(const std::vector<MsrEntry>& msrs) const;
  [[nodiscard]] Result<void> setCpuid(const std::vector<CpuidEntry>& entries) const;
  // LAPIC LVT0 = ExtINT, LVT1 = NMI (needs the in-kernel irqchip).
  [[nodiscard]] Result<void> setupLint() const;
  [[nodiscard]] Result<void> setRunnable() const;

  // KVM_RUN once. Returned spans point into the kvm_run page and stay valid until the next
  // run(). EINTR becomes exit::Interrupted.
  [[nodiscard]] Result<VcpuExit> run();
  // The KVM_RUN request number: the only ioctl a running vCPU thread makes (its seccomp
  // filter allows just this one).
  [[nodiscard]] static uint64_t runIoctl() noexcept;
  // Sets kvm_run->immediate_exit (any thread).
  void setImmediateExit(bool value) noexcept;

 private:
  UniqueFd fd_;
  MappedRegion run_;
  uint32_t id_;
};

}  // namespace nv::vmm::kvm
