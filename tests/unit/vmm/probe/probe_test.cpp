// SPDX-License-Identifier: Apache-2.0
// The probe guest image: a valid ELF for the VMM's loader, with IDT gates for #UD and #BP that
// point at handlers ending in iretq, and entry code that loads that IDT.
#include "vmm/probe/probe.h"

#include <gtest/gtest.h>

#include <cstring>

#include "tests/support/fake_guest_memory.h"
#include "vmm/loader/elf_loader.h"

namespace nv::vmm::probe {
namespace {

struct Gate {
  uint64_t handler;
  uint16_t selector;
  uint8_t type;
};

Gate readGate(testing::FakeGuestMemory& memory, uint8_t vector) {
  const uint8_t* g = memory.at(kProbeIdt + 16ULL * vector);
  uint64_t handler = uint64_t{g[0]} | uint64_t{g[1]} << 8 | uint64_t{g[6]} << 16 |
                     uint64_t{g[7]} << 24 | uint64_t{g[8]} << 32 | uint64_t{g[9]} << 40 |
                     uint64_t{g[10]} << 48 | uint64_t{g[11]} << 56;
  return {handler, static_cast<uint16_t>(g[2] | g[3] << 8), g[5]};
}

TEST(ProbeGuest, LoadsAtOneMiBWithGatesToIretqHandlers) {
  const std::string image = probeGuestElf();
  testing::FakeGuestMemory memory(4 << 20);
  auto loaded = loader::loadElf(
      std::span(reinterpret_cast<const uint8_t*>(image.data()), image.size()), memory);
  ASSERT_TRUE(loaded) << loaded.error().message();
  EXPECT_EQ(loaded->entry, kProbeEntry);

  // lidt [disp32] with the IDTR address, then ud2, int3, out 0x31 to 0xF4.
  const uint8_t* code = memory.at(kProbeEntry);
  EXPECT_EQ(std::memcmp(code, "\x0F\x01\x1C\x25", 4), 0);
  uint32_t idtr = 0;
  std::memcpy(&idtr, code + 4, 4);
  uint16_t limit = 0;
  uint64_t base = 0;
  std::memcpy(&limit, memory.at(idtr), 2);
  std::memcpy(&base, memory.at(idtr + 2), 8);
  EXPECT_EQ(base, kProbeIdt);
  EXPECT_GE(limit, 16U * 7 - 1);
  EXPECT_EQ(std::memcmp(code + 8, "\x0F\x0B\xCC\xB0\x31\xE6\xF4\xF4", 8), 0);

  for (uint8_t vector : {kProbeVectorUd, kProbeVectorBp}) {
    Gate gate = readGate(memory, vector);
    EXPECT_EQ(gate.selector, 0x08) << int(vector);
    EXPECT_EQ(gate.type, 0x8E) << int(vector);  // present, DPL 0, 64-bit interrupt gate
    // Each handler ends in iretq (48 CF); #UD's first steps over the 2-byte ud2.
    const uint8_t* h = memory.at(gate.handler);
    if (vector == kProbeVectorUd) {
      EXPECT_EQ(std::memcmp(h, "\x48\x83\x04\x24\x02\x48\xCF", 7), 0);
    } else {
      EXPECT_EQ(std::memcmp(h, "\x48\xCF", 2), 0);
    }
  }
  // Every other gate is not present: a stray exception ends the VM instead of running junk.
  EXPECT_EQ(readGate(memory, 13).type, 0);
  EXPECT_EQ(readGate(memory, 14).type, 0);
}

}  // namespace
}  // namespace nv::vmm::probe
