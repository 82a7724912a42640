// SPDX-License-Identifier: Apache-2.0
// GDT, page tables and registers for direct kernel boot.
#include "vmm/arch/x86_64/regs.h"

#include "vmm/arch/x86_64/layout.h"

namespace nv::vmm::x86_64 {
namespace {

constexpr uint64_t kCr0Pe = 0x1;
constexpr uint64_t kCr0Et = 0x10;
constexpr uint64_t kCr0Pg = 0x80000000;
constexpr uint64_t kCr4Pae = 0x20;
constexpr uint64_t kEferLme = 0x100;
constexpr uint64_t kEferLma = 0x400;
constexpr uint64_t kPageRw = 0x3;  // present | writable
constexpr uint64_t kPagePs = 0x80;

uint64_t codeEntry(BootMode mode) {
  return mode == BootMode::kLinux64 ? gdtEntry(0xA09B, 0, 0xFFFFF) : gdtEntry(0xC09B, 0, 0xFFFFF);
}
uint64_t dataEntry() { return gdtEntry(0xC093, 0, 0xFFFFF); }
uint64_t tssEntry(BootMode mode) {
  return mode == BootMode::kLinux64 ? gdtEntry(0x808B, 0, 0xFFFFF) : gdtEntry(0x008B, 0, 0x67);
}

}  // namespace

Segment segmentFromGdt(uint64_t entry, uint16_t index) {
  Segment s;
  s.base = ((entry >> 16) & 0xFFFFFF) | (((entry >> 56) & 0xFF) << 24);
  uint32_t limit = static_cast<uint32_t>((entry & 0xFFFF) | (((entry >> 48) & 0xF) << 16));
  s.g = static_cast<uint8_t>((entry >> 55) & 1);
  s.limit = s.g != 0 ? (limit << 12) | 0xFFF : limit;
  s.selector = static_cast<uint16_t>(index * 8);
  s.type = static_cast<uint8_t>((entry >> 40) & 0xF);
  s.s = static_cast<uint8_t>((entry >> 44) & 1);
  s.dpl = static_cast<uint8_t>((entry >> 45) & 3);
  s.present = static_cast<uint8_t>((entry >> 47) & 1);
  s.avl = static_cast<uint8_t>((entry >> 52) & 1);
  s.l = static_cast<uint8_t>((entry >> 53) & 1);
  s.db = static_cast<uint8_t>((entry >> 54) & 1);
  s.unusable = s.present != 0 ? 0 : 1;
  return s;
}

Result<void> writeBootTables(const GuestMemory& memory, BootMode mode) {
  const uint64_t gdt[4] = {0, codeEntry(mode), dataEntry(), tssEntry(mode)};
  for (uint64_t i = 0; i < 4; ++i) {
    NV_TRY(memory.writeObj(GuestAddress(kGdtAddr + i * 8), gdt[i]));
  }
  NV_TRY(memory.writeObj<uint64_t>(GuestAddress(kIdtAddr), 0));
  if (mode != BootMode::kLinux64) {
    return {};
  }
  // PML4[0] -> PDPT; PDPT[0..3] -> four PDs; PD entries map 2 MiB pages: 4 GiB identity map.
  NV_TRY(memory.writeObj<uint64_t>(GuestAddress(kPml4Addr), kPdptAddr | kPageRw));
  for (uint64_t i = 0; i < 4; ++i) {
    NV_TRY(memory.writeObj<uint64_t>(GuestAddress(kPdptAddr + i * 8),
                                     (kPdAddr + i * 0x1000) | kPageRw));
  }
  for (uint64_t i = 0; i < 2048; ++i) {
    NV_TRY(memory.writeObj<uint64_t>(GuestAddress(kPdAddr + i * 8),
                                     (i << 21) | kPageRw | kPagePs));
  }
  return {};
}

SpecialRegisters bootSregs(const SpecialRegisters& base, BootMode mode) {
  SpecialRegisters s = base;
  Segment code = segmentFromGdt(codeEntry(mode), 1);
  Segment data = segmentFromGdt(dataEntry(), 2);
  Segment tss = segmentFromGdt(tssEntry(mode), 3);
  s.cs = code;
  s.ds = s.es = s.fs = s.gs = s.ss = data;
  s.tr = tss;
  s.gdt = {kGdtAddr, 4 * 8 - 1};
  s.idt = {kIdtAddr, 7};
  if (mode == BootMode::kLinux64) {
    s.cr0 = kCr0Pe | kCr0Et | kCr0Pg;
    s.cr3 = kPml4Addr;
    s.cr4 = kCr4Pae;
    s.efer = kEferLme | kEferLma;
  } else {
    s.cr0 = kCr0Pe | kCr0Et;
    s.cr3 = 0;
    s.cr4 = 0;
    s.efer = 0;
  }
  return s;
}

Registers bootRegs(uint64_t entry, BootMode mode) {
  Registers r;
  r.rip = entry;
  r.rflags = 0x2;
  if (mode == BootMode::kLinux64) {
    r.rsp = r.rbp = kBootStackTop;
    r.rsi = kZeroPageAddr;
  } else {
    r.rbx = kPvhInfoAddr;
  }
  return r;
}

std::vector<MsrEntry> bootMsrs() {
  return {
      {0x174, 0},  // IA32_SYSENTER_CS
      {0x175, 0},  // IA32_SYSENTER_ESP
      {0x176, 0},  // IA32_SYSENTER_EIP
      {0xC0000081, 0},  // STAR
      {0xC0000083, 0},  // CSTAR
      {0xC0000102, 0},  // KERNEL_GS_BASE
      {0xC0000084, 0},  // SYSCALL_MASK
      {0xC0000082, 0},  // LSTAR
      {0x10, 0},   // IA32_TSC
      {0x1A0, 1},  // IA32_MISC_ENABLE: fast strings
      {0x2FF, (1ULL << 11) | 6},  // MTRRdefType: enabled, write-back
  };
}

}  // namespace nv::vmm::x86_64
