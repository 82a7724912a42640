// SPDX-License-Identifier: Apache-2.0
// KVM vCPU ioctls and exit decoding.
#include "vmm/kvm/kvm_vcpu.h"

#include "vmm/kvm/kvm_abi.h"

#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <fmt/format.h>

#include <atomic>
#include <cstring>
#include <memory>

namespace nv::vmm::kvm {
namespace {

Segment fromKvm(const kvm_segment& s) {
  return Segment{s.base, s.limit, s.selector, s.type, s.present, s.dpl, s.db,
                 s.s,    s.l,     s.g,        s.avl,  s.unusable};
}

kvm_segment toKvm(const Segment& s) {
  kvm_segment k{};
  k.base = s.base;
  k.limit = s.limit;
  k.selector = s.selector;
  k.type = s.type;
  k.present = s.present;
  k.dpl = s.dpl;
  k.db = s.db;
  k.s = s.s;
  k.l = s.l;
  k.g = s.g;
  k.avl = s.avl;
  k.unusable = s.unusable;
  return k;
}

constexpr uint32_t kApicLvt0 = 0x350;
constexpr uint32_t kApicLvt1 = 0x360;
constexpr uint32_t kDeliveryExtInt = 7;
constexpr uint32_t kDeliveryNmi = 4;

uint32_t lapicReg(const kvm_lapic_state& state, uint32_t offset) {
  uint32_t value = 0;
  std::memcpy(&value, state.regs + offset, 4);
  return value;
}
void setLapicReg(kvm_lapic_state& state, uint32_t offset, uint32_t value) {
  std::memcpy(state.regs + offset, &value, 4);
}

}  // namespace

Result<Registers> KvmVcpu::getRegs() const {
  kvm_regs r{};
  if (::ioctl(fd_.get(), KVM_GET_REGS, &r) != 0) {
    return failErrno("KVM_GET_REGS");
  }
  return Registers{r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rsp, r.rbp, r.r8,
                   r.r9,  r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, r.rip, r.rflags};
}

Result<void> KvmVcpu::setRegs(const Registers& g) const {
  kvm_regs r{};
  r.rax = g.rax; r.rbx = g.rbx; r.rcx = g.rcx; r.rdx = g.rdx;
  r.rsi = g.rsi; r.rdi = g.rdi; r.rsp = g.rsp; r.rbp = g.rbp;
  r.r8 = g.r8; r.r9 = g.r9; r.r10 = g.r10; r.r11 = g.r11;
  r.r12 = g.r12; r.r13 = g.r13; r.r14 = g.r14; r.r15 = g.r15;
  r.rip = g.rip; r.rflags = g.rflags;
  if (::ioctl(fd_.get(), KVM_SET_REGS, &r) != 0) {
    return failErrno("KVM_SET_REGS");
  }
  return {};
}

Result<SpecialRegisters> KvmVcpu::getSregs() const {
  kvm_sregs s{};
  if (::ioctl(fd_.get(), KVM_GET_SREGS, &s) != 0) {
    return failErrno("KVM_GET_SREGS");
  }
  SpecialRegisters out;
  out.cs = fromKvm(s.cs); out.ds = fromKvm(s.ds); out.es = fromKvm(s.es);
  out.fs = fromKvm(s.fs); out.gs = fromKvm(s.gs); out.ss = fromKvm(s.ss);
  out.tr = fromKvm(s.tr); out.ldt = fromKvm(s.ldt);
  out.gdt = {s.gdt.base, s.gdt.limit};
  out.idt = {s.idt.base, s.idt.limit};
  out.cr0 = s.cr0; out.cr2 = s.cr2; out.cr3 = s.cr3; out.cr4 = s.cr4; out.cr8 = s.cr8;
  out.efer = s.efer; out.apic_base = s.apic_base;
  return out;
}

Result<void> KvmVcpu::setSregs(const SpecialRegisters& in) const {
  // Start from KVM's current state so fields we do not model (interrupt bitmap) survive.
  kvm_sregs s{};
  if (::ioctl(fd_.get(), KVM_GET_SREGS, &s) != 0) {
    return failErrno("KVM_GET_SREGS");
  }
  s.cs = toKvm(in.cs); s.ds = toKvm(in.ds); s.es = toKvm(in.es);
  s.fs = toKvm(in.fs); s.gs = toKvm(in.gs); s.ss = toKvm(in.ss);
  s.tr = toKvm(in.tr); s.ldt = toKvm(in.ldt);
  s.gdt.base = in.gdt.base; s.gdt.limit = in.gdt.limit;
  s.idt.base = in.idt.base; s.idt.limit = in.idt.limit;
  s.cr0 = in.cr0; s.cr2 = in.cr2; s.cr3 = in.cr3; s.cr4 = in.cr4; s.cr8 = in.cr8;
  s.efer = in.efer; s.apic_base = in.apic_base;
  if (::ioctl(fd_.get(), KVM_SET_SREGS, &s) != 0) {
    return failErrno("KVM_SET_SREGS");
  }
  return {};
}

Result<void> KvmVcpu::setDefaultFpu() const {
  kvm_fpu fpu{};
  fpu.fcw = 0x37F;
  fpu.mxcsr = 0x1F80;
  if (::ioctl(fd_.get(), KVM_SET_FPU, &fpu) != 0) {
    return failErrno("KVM_SET_FPU");
  }
  return {};
}

Result<void> KvmVcpu::setMsrs(const std::vector<MsrEntry>& msrs) const {
  size_t bytes = sizeof(abi::MsrsHeader) + msrs.size() * sizeof(kvm_msr_entry);
  auto buffer = std::make_unique<uint64_t[]>(bytes / sizeof(uint64_t) + 1);
  auto* list = reinterpret_cast<abi::MsrsHeader*>(buffer.get());
  auto* entries = reinterpret_cast<kvm_msr_entry*>(list + 1);
  list->nmsrs = static_cast<uint32_t>(msrs.size());
  for (size_t i = 0; i < msrs.size(); ++i) {
    entries[i].index = msrs[i].index;
    entries[i].data = msrs[i].data;
  }
  int set = ::ioctl(fd_.get(), abi::kSetMsrs, list);
  if (set < 0) {
    return failErrno("KVM_SET_MSRS");
  }
  if (static_cast<size_t>(set) != msrs.size()) {
    return fail(Errc::kUnsupported,
                fmt::format("KVM_SET_MSRS set {} of {} MSRs (stopped at {:#x})", set, msrs.size(),
                            msrs[static_cast<size_t>(set)].index));
  }
  return {};
}

Result<void> KvmVcpu::setCpuid(const std::vector<CpuidEntry>& entries) const {
  size_t bytes = sizeof(abi::CpuidHeader) + entries.size() * sizeof(kvm_cpuid_entry2);
  auto buffer = std::make_unique<uint64_t[]>(bytes / sizeof(uint64_t) + 1);
  auto* cpuid = reinterpret_cast<abi::CpuidHeader*>(buffer.get());
  auto* out = reinterpret_cast<kvm_cpuid_entry2*>(cpuid + 1);
  cpuid->nent = static_cast<uint32_t>(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    kvm_cpuid_entry2& e = out[i];
    e = kvm_cpuid_entry2{};
    e.function = entries[i].function;
    e.index = entries[i].index;
    e.flags = entries[i].flags;
    e.eax = entries[i].eax;
    e.ebx = entries[i].ebx;
    e.ecx = entries[i].ecx;
    e.edx = entries[i].edx;
  }
  if (::ioctl(fd_.get(), abi::kSetCpuid2, cpuid) != 0) {
    return failErrno("KVM_SET_CPUID2");
  }
  return {};
}

Result<void> KvmVcpu::setupLint() const {
  kvm_lapic_state lapic{};
  if (::ioctl(fd_.get(), KVM_GET_LAPIC, &lapic) != 0) {
    return failErrno("KVM_GET_LAPIC");
  }
  setLapicReg(lapic, kApicLvt0, (lapicReg(lapic, kApicLvt0) & ~0x700U) | (kDeliveryExtInt << 8));
  setLapicReg(lapic, kApicLvt1, (lapicReg(lapic, kApicLvt1) & ~0x700U) | (kDeliveryNmi << 8));
  if (::ioctl(fd_.get(), KVM_SET_LAPIC, &lapic) != 0) {
    return failErrno("KVM_SET_LAPIC");
  }
  return {};
}

Result<void> KvmVcpu::setRunnable() const {
  kvm_mp_state state{};
  state.mp_state = KVM_MP_STATE_RUNNABLE;
  if (::ioctl(fd_.get(), KVM_SET_MP_STATE, &state) != 0) {
    return failErrno("KVM_SET_MP_STATE");
  }
  return {};
}

void KvmVcpu::setImmediateExit(bool value) noexcept {
  auto* run = reinterpret_cast<kvm_run*>(run_.data());
  std::atomic_ref<uint8_t>(run->immediate_exit).store(value ? 1 : 0);
}

uint64_t KvmVcpu::runIoctl() noexcept { return KVM_RUN; }

Result<VcpuExit> KvmVcpu::run() {
  auto* run = reinterpret_cast<kvm_run*>(run_.data());
  if (::ioctl(fd_.get(), KVM_RUN, 0) != 0) {
    if (errno == EINTR || errno == EAGAIN) {
      return VcpuExit(exit::Interrupted{});
    }
    return failErrno(fmt::format("KVM_RUN on vCPU {}", id_));
  }
  uint8_t* base = run_.data();
  switch (run->exit_reason) {
    case KVM_EXIT_IO: {
      // Bounds: KVM places the data inside the run mapping; check anyway.
      uint64_t len = static_cast<uint64_t>(run->io.size) * run->io.count;
      if (run->io.data_offset > run_.size() || len > run_.size() - run->io.data_offset) {
        return fail(Errc::kInternal, "KVM_EXIT_IO data outside the kvm_run page");
      }
      uint8_t* data = base + run->io.data_offset;
      if (run->io.direction == KVM_EXIT_IO_OUT) {
        return VcpuExit(exit::IoOut{run->io.port, {data, static_cast<size_t>(len)}});
      }
      return VcpuExit(exit::IoIn{run->io.port, {data, static_cast<size_t>(len)}});
    }
    case KVM_EXIT_MMIO: {
      size_t len = std::min<size_t>(run->mmio.len, sizeof(run->mmio.data));
      if (run->mmio.is_write != 0) {
        return VcpuExit(exit::MmioWrite{run->mmio.phys_addr, {run->mmio.data, len}});
      }
      return VcpuExit(exit::MmioRead{run->mmio.phys_addr, {run->mmio.data, len}});
    }
    case KVM_EXIT_HLT:
      return VcpuExit(exit::Hlt{});
    case KVM_EXIT_SHUTDOWN:
      return VcpuExit(exit::Shutdown{});
    case KVM_EXIT_SYSTEM_EVENT:
      return VcpuExit(exit::SystemEvent{run->system_event.type});
    case KVM_EXIT_INTR:
      return VcpuExit(exit::Interrupted{});
    case KVM_EXIT_INTERNAL_ERROR:
      return VcpuExit(exit::InternalError{run->internal.suberror});
    case KVM_EXIT_FAIL_ENTRY:
      return VcpuExit(exit::FailEntry{run->fail_entry.hardware_entry_failure_reason});
    default:
      return VcpuExit(exit::Unknown{run->exit_reason});
  }
}

}  // namespace nv::vmm::kvm
