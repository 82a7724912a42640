// SPDX-License-Identifier: Apache-2.0
// Boot structures written into fake guest memory and parsed back: zero page, e820, cmdline,
// PVH start info, GDT, page tables, MP table, CPUID normalization.
#include <asm/bootparam.h>
#include <gtest/gtest.h>

#include <cstring>

#include "tests/support/fake_guest_memory.h"
#include "vmm/arch/x86_64/boot_params.h"
#include "vmm/arch/x86_64/cpuid.h"
#include "vmm/arch/x86_64/layout.h"
#include "vmm/arch/x86_64/mptable.h"
#include "vmm/arch/x86_64/regs.h"

namespace nv::vmm::x86_64 {
namespace {

using testing::FakeGuestMemory;

TEST(RamLayout, SmallMemory_OneRegion) {
  auto layout = ramLayout(128ULL << 20);
  ASSERT_EQ(layout.size(), 1U);
  EXPECT_EQ(layout[0].size, 128ULL << 20);
}

TEST(RamLayout, MoreThan3GiB_SplitsAroundMmioHole) {
  auto layout = ramLayout(5ULL << 30);
  ASSERT_EQ(layout.size(), 2U);
  EXPECT_EQ(layout[0].start.value(), 0U);
  EXPECT_EQ(layout[0].size, kMmioHoleStart);
  EXPECT_EQ(layout[1].start.value(), kMmioHoleEnd);
  EXPECT_EQ(layout[0].size + layout[1].size, 5ULL << 30);
}

TEST(E820, TwoRegions_ListsLowRamEbdaAndBothRegions) {
  FakeGuestMemory memory(0, 0x200000, kMmioHoleEnd, 0x100000);
  auto map = buildE820(memory);
  ASSERT_EQ(map.size(), 4U);
  EXPECT_EQ(map[0].addr, 0U);
  EXPECT_EQ(map[0].size, kEbdaStart);
  EXPECT_EQ(map[1].type, kE820Reserved);
  EXPECT_EQ(map[2].addr, kHighMemStart);
  EXPECT_EQ(map[2].size, 0x100000U);
  EXPECT_EQ(map[3].addr, kMmioHoleEnd);
}

TEST(ZeroPage, Written_ParsesBackWithHeaderCmdlineE820Initramfs) {
  FakeGuestMemory memory(64ULL << 20);
  const std::string cmdline = "console=ttyS0 root=/dev/vda";
  ASSERT_TRUE(writeCmdline(memory, cmdline));
  ASSERT_TRUE(writeZeroPage(memory, cmdline, Initramfs{0x3000000, 0x1234}));
  auto params = memory.readObj<boot_params>(GuestAddress(kZeroPageAddr));
  // boot_params is packed: each field is read by value (unary +), never bound to a reference.
  ASSERT_TRUE(params);
  EXPECT_EQ(+params->hdr.boot_flag, 0xAA55);
  EXPECT_EQ(+params->hdr.header, 0x53726448U);
  EXPECT_EQ(+params->hdr.type_of_loader, 0xFF);
  EXPECT_EQ(+params->hdr.cmd_line_ptr, kCmdlineAddr);
  EXPECT_EQ(+params->hdr.cmdline_size, cmdline.size() + 1);
  EXPECT_EQ(+params->hdr.ramdisk_image, 0x3000000U);
  EXPECT_EQ(+params->hdr.ramdisk_size, 0x1234U);
  EXPECT_EQ(+params->hdr.kernel_alignment, 0x1000000U);
  ASSERT_EQ(+params->e820_entries, 3);
  EXPECT_EQ(+params->e820_table[2].addr, kHighMemStart);
  EXPECT_EQ(+params->e820_table[2].size, (64ULL << 20) - kHighMemStart);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(memory.at(kCmdlineAddr))), cmdline);
}

TEST(Cmdline, TooLongOrWithNul_Rejected) {
  FakeGuestMemory memory(1 << 20);
  EXPECT_FALSE(writeCmdline(memory, std::string(kCmdlineMax, 'x')));
  EXPECT_FALSE(writeCmdline(memory, std::string("a\0b", 3)));
}

TEST(Initramfs, PlacedPageAlignedAtTopOfLowRamOrRejected) {
  FakeGuestMemory memory(256ULL << 20);
  auto addr = initramfsAddress(memory, 10000);
  ASSERT_TRUE(addr);
  EXPECT_EQ(*addr % 4096, 0U);
  EXPECT_LE(*addr + 10000, 256ULL << 20);
  EXPECT_GT(*addr + 10000 + 4096, 256ULL << 20);
  EXPECT_FALSE(initramfsAddress(memory, 250ULL << 20));
  EXPECT_FALSE(initramfsAddress(memory, ~0ULL));
}

TEST(PvhStartInfo, Written_ParsesBack) {
  FakeGuestMemory memory(32ULL << 20);
  ASSERT_TRUE(writePvhStartInfo(memory, Initramfs{0x1000000, 77}));
  uint32_t magic = *memory.readObj<uint32_t>(GuestAddress(kPvhInfoAddr));
  EXPECT_EQ(magic, 0x336EC578U);
  EXPECT_EQ(*memory.readObj<uint32_t>(GuestAddress(kPvhInfoAddr + 12)), 1U);  // nr_modules
  EXPECT_EQ(*memory.readObj<uint64_t>(GuestAddress(kPvhInfoAddr + 16)), kPvhModlistAddr);
  EXPECT_EQ(*memory.readObj<uint64_t>(GuestAddress(kPvhInfoAddr + 24)), kCmdlineAddr);
  EXPECT_EQ(*memory.readObj<uint64_t>(GuestAddress(kPvhInfoAddr + 40)), kPvhMemmapAddr);
  EXPECT_EQ(*memory.readObj<uint32_t>(GuestAddress(kPvhInfoAddr + 48)), 3U);
  EXPECT_EQ(*memory.readObj<uint64_t>(GuestAddress(kPvhModlistAddr)), 0x1000000U);
  EXPECT_EQ(*memory.readObj<uint64_t>(GuestAddress(kPvhModlistAddr + 8)), 77U);
  // Third memmap entry: RAM from 1 MiB.
  EXPECT_EQ(*memory.readObj<uint64_t>(GuestAddress(kPvhMemmapAddr + 48)), kHighMemStart);
}

TEST(Gdt, EntriesMatchFirecrackerValues) {
  EXPECT_EQ(gdtEntry(0xA09B, 0, 0xFFFFF), 0x00AF9B000000FFFFULL);
  EXPECT_EQ(gdtEntry(0xC093, 0, 0xFFFFF), 0x00CF93000000FFFFULL);
  EXPECT_EQ(gdtEntry(0x808B, 0, 0xFFFFF), 0x008F8B000000FFFFULL);
  Segment code = segmentFromGdt(0x00AF9B000000FFFFULL, 1);
  EXPECT_EQ(code.selector, 8);
  EXPECT_EQ(code.l, 1);
  EXPECT_EQ(code.db, 0);
  EXPECT_EQ(code.limit, 0xFFFFFFFFU);
  EXPECT_EQ(code.type, 0xB);
  EXPECT_EQ(code.present, 1);
  EXPECT_EQ(code.unusable, 0);
}

TEST(BootTables, Linux64_IdentityMapsFourGiBWithTwoMiBPages) {
  FakeGuestMemory memory(1 << 20);
  ASSERT_TRUE(writeBootTables(memory, BootMode::kLinux64));
  EXPECT_EQ(*memory.readObj<uint64_t>(GuestAddress(kGdtAddr + 8)), 0x00AF9B000000FFFFULL);
  uint64_t pml4 = *memory.readObj<uint64_t>(GuestAddress(kPml4Addr));
  EXPECT_EQ(pml4, kPdptAddr | 3);
  // Walk a few addresses through the tables.
  for (uint64_t gva : {0x0ULL, 0x1234567ULL, 0xD0000050ULL, 0xFFFFFFFFULL}) {
    uint64_t pdpte = *memory.readObj<uint64_t>(GuestAddress((pml4 & ~0xFFFULL) + ((gva >> 30) & 511) * 8));
    ASSERT_EQ(pdpte & 1, 1U);
    uint64_t pde = *memory.readObj<uint64_t>(GuestAddress((pdpte & ~0xFFFULL) + ((gva >> 21) & 511) * 8));
    ASSERT_EQ(pde & 0x81, 0x81U);
    EXPECT_EQ((pde & ~0x1FFFFFULL) | (gva & 0x1FFFFF), gva);
  }
}

TEST(BootRegs, Linux64AndPvhDiffer) {
  SpecialRegisters base;
  auto s64 = bootSregs(base, BootMode::kLinux64);
  EXPECT_EQ(s64.cr3, kPml4Addr);
  EXPECT_EQ(s64.efer & 0x500, 0x500U);
  EXPECT_EQ(s64.cr0 & 0x80000001, 0x80000001U);
  auto spvh = bootSregs(base, BootMode::kPvh);
  EXPECT_EQ(spvh.cr0, 0x11U);
  EXPECT_EQ(spvh.cs.l, 0);
  EXPECT_EQ(spvh.cs.db, 1);
  EXPECT_EQ(bootRegs(0x1000000, BootMode::kLinux64).rsi, kZeroPageAddr);
  EXPECT_EQ(bootRegs(0x1000000, BootMode::kPvh).rbx, kPvhInfoAddr);
}

uint8_t sum(const uint8_t* p, size_t n) {
  uint8_t s = 0;
  for (size_t i = 0; i < n; ++i) {
    s = static_cast<uint8_t>(s + p[i]);
  }
  return s;
}

TEST(MpTable, ThreeCpus_ParsesBackWithValidChecksums) {
  FakeGuestMemory memory(1 << 20);
  ASSERT_TRUE(writeMpTable(memory, 3));
  const uint8_t* mpf = memory.at(kEbdaStart);
  EXPECT_EQ(std::memcmp(mpf, "_MP_", 4), 0);
  EXPECT_EQ(sum(mpf, 16), 0);
  uint32_t physptr = 0;
  std::memcpy(&physptr, mpf + 4, 4);
  const uint8_t* table = memory.at(physptr);
  EXPECT_EQ(std::memcmp(table, "PCMP", 4), 0);
  uint16_t length = 0, count = 0;
  std::memcpy(&length, table + 4, 2);
  std::memcpy(&count, table + 34, 2);
  EXPECT_EQ(sum(table, length), 0);
  EXPECT_EQ(count, 3 + 1 + 1 + 24 + 2);
  EXPECT_EQ(length, 44 + 3 * 20 + 8 + 8 + 26 * 8);
  // Processor entries: type 0, APIC ids 0..2, BSP flag only on the first.
  for (int cpu = 0; cpu < 3; ++cpu) {
    const uint8_t* entry = table + 44 + cpu * 20;
    EXPECT_EQ(entry[0], 0);
    EXPECT_EQ(entry[1], cpu);
    EXPECT_EQ(entry[3], cpu == 0 ? 3 : 1);
  }
  EXPECT_FALSE(writeMpTable(memory, 0));
  EXPECT_FALSE(writeMpTable(memory, 255));
}

TEST(Cpuid, Filter_SetsApicIdTopologyAndHypervisorBit) {
  std::vector<CpuidEntry> host = {
      {.function = 1, .ebx = 0xFF00FF01, .ecx = 1U << 15, .edx = 0},
      {.function = 0xA, .eax = 7, .ebx = 7},
      {.function = 0xB, .index = 0, .flags = 1, .edx = 99},
      {.function = 0xB, .index = 1, .flags = 1, .edx = 99},
  };
  auto out = filterCpuid(host, 2, 4);
  EXPECT_EQ(out[0].ebx >> 24, 2U);
  EXPECT_EQ((out[0].ebx >> 16) & 0xFF, 4U);
  EXPECT_EQ((out[0].ebx >> 8) & 0xFF, 8U);
  EXPECT_EQ(out[0].ebx & 0xFF, 1U);
  EXPECT_NE(out[0].ecx & (1U << 31), 0U);
  EXPECT_EQ(out[0].ecx & (1U << 15), 0U);
  EXPECT_NE(out[0].edx & (1U << 28), 0U);
  EXPECT_EQ(out[1].eax, 0U);
  EXPECT_EQ(out[2].edx, 2U);
  EXPECT_EQ(out[2].ebx, 1U);
  EXPECT_EQ(out[3].ebx, 4U);
  EXPECT_EQ(out[3].eax, 2U);
  auto single = filterCpuid(host, 0, 1);
  EXPECT_EQ(single[0].edx & (1U << 28), 0U);
}

}  // namespace
}  // namespace nv::vmm::x86_64
