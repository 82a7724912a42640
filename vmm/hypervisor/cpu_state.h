// SPDX-License-Identifier: Apache-2.0
// Hypervisor-neutral x86-64 vCPU state (registers, segments, CPUID, MSRs); vmm/kvm/ converts
// these to and from the KVM structures so nothing else needs <linux/kvm.h>.
#pragma once

#include <cstdint>
#include <vector>

namespace nv::vmm {

struct Registers {
  uint64_t rax = 0, rbx = 0, rcx = 0, rdx = 0, rsi = 0, rdi = 0, rsp = 0, rbp = 0;
  uint64_t r8 = 0, r9 = 0, r10 = 0, r11 = 0, r12 = 0, r13 = 0, r14 = 0, r15 = 0;
  uint64_t rip = 0, rflags = 0x2;
};

// A segment register as the CPU caches it (kvm_segment layout, our names).
struct Segment {
  uint64_t base = 0;
  uint32_t limit = 0;
  uint16_t selector = 0;
  uint8_t type = 0, present = 0, dpl = 0, db = 0, s = 0, l = 0, g = 0, avl = 0;
  uint8_t unusable = 0;
};

struct DescriptorTable {
  uint64_t base = 0;
  uint16_t limit = 0;
};

struct SpecialRegisters {
  Segment cs, ds, es, fs, gs, ss, tr, ldt;
  DescriptorTable gdt, idt;
  uint64_t cr0 = 0, cr2 = 0, cr3 = 0, cr4 = 0, cr8 = 0, efer = 0, apic_base = 0;
};

struct CpuidEntry {
  uint32_t function = 0;
  uint32_t index = 0;
  uint32_t flags = 0;  // KVM_CPUID_FLAG_SIGNIFCANT_INDEX = 1
  uint32_t eax = 0, ebx = 0, ecx = 0, edx = 0;
};
inline constexpr uint32_t kCpuidFlagSignificantIndex = 1;

struct MsrEntry {
  uint32_t index = 0;
  uint64_t data = 0;
};

}  // namespace nv::vmm
