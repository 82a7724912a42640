// SPDX-License-Identifier: Apache-2.0
// MP table writer (layout as in Linux arch/x86/include/asm/mpspec_def.h).
#include "vmm/arch/x86_64/mptable.h"

#include <fmt/format.h>

#include <cstring>
#include <vector>

#include "vmm/arch/x86_64/layout.h"

namespace nv::vmm::x86_64 {
namespace {

#pragma pack(push, 1)
struct MpfIntel {
  char signature[4];
  uint32_t physptr;
  uint8_t length;
  uint8_t specification;
  uint8_t checksum;
  uint8_t feature1, feature2, feature3, feature4, feature5;
};
struct MpcTable {
  char signature[4];
  uint16_t length;
  uint8_t spec;
  uint8_t checksum;
  char oem[8];
  char productid[12];
  uint32_t oemptr;
  uint16_t oemsize;
  uint16_t oemcount;
  uint32_t lapic;
  uint32_t reserved;
};
struct MpcCpu {
  uint8_t type, apicid, apicver, cpuflag;
  uint32_t cpufeature, featureflag, reserved[2];
};
struct MpcBus {
  uint8_t type, busid;
  char bustype[6];
};
struct MpcIoapic {
  uint8_t type, apicid, apicver, flags;
  uint32_t apicaddr;
};
struct MpcIntsrc {
  uint8_t type, irqtype;
  uint16_t irqflag;
  uint8_t srcbus, srcbusirq, dstapic, dstirq;
};
#pragma pack(pop)
static_assert(sizeof(MpfIntel) == 16 && sizeof(MpcTable) == 44 && sizeof(MpcCpu) == 20 &&
              sizeof(MpcBus) == 8 && sizeof(MpcIoapic) == 8 && sizeof(MpcIntsrc) == 8);

template <class T>
void append(std::vector<uint8_t>& out, const T& value) {
  const auto* bytes = reinterpret_cast<const uint8_t*>(&value);
  out.insert(out.end(), bytes, bytes + sizeof(T));
}

uint8_t checksum(const uint8_t* data, size_t len) {
  uint8_t sum = 0;
  for (size_t i = 0; i < len; ++i) {
    sum = static_cast<uint8_t>(sum + data[i]);
  }
  return static_cast<uint8_t>(-sum);
}

}  // namespace

Result<void> writeMpTable(const GuestMemory& memory, uint32_t num_cpus) {
  if (num_cpus == 0 || num_cpus > kMaxMpCpus) {
    return fail(Errc::kInvalidArgument, fmt::format("MP table cannot describe {} vCPUs", num_cpus));
  }
  std::vector<uint8_t> table;
  MpcTable header{};
  std::memcpy(header.signature, "PCMP", 4);
  header.spec = 4;
  std::memcpy(header.oem, "NANOVSR ", 8);
  std::memcpy(header.productid, "000000000000", 12);
  header.lapic = static_cast<uint32_t>(kLapicAddr);
  append(table, header);
  uint16_t entries = 0;
  for (uint32_t cpu = 0; cpu < num_cpus; ++cpu) {
    MpcCpu entry{};
    entry.type = 0;
    entry.apicid = static_cast<uint8_t>(cpu);
    entry.apicver = 0x14;
    entry.cpuflag = static_cast<uint8_t>(1 | (cpu == 0 ? 2 : 0));  // enabled | BSP
    entry.cpufeature = 0x600;
    entry.featureflag = 0x201;  // APIC | FPU
    append(table, entry);
    ++entries;
  }
  MpcBus bus{1, 0, {'I', 'S', 'A', ' ', ' ', ' '}};
  append(table, bus);
  ++entries;
  auto ioapic_id = static_cast<uint8_t>(num_cpus + 1);
  append(table, MpcIoapic{2, ioapic_id, 0x14, 1, static_cast<uint32_t>(kIoapicAddr)});
  ++entries;
  for (uint8_t irq = 0; irq < 24; ++irq) {
    append(table, MpcIntsrc{3, 0, 0, 0, irq, ioapic_id, irq});  // mp_INT, ISA irq -> pin
    ++entries;
  }
  append(table, MpcIntsrc{4, 3, 0, 0, 0, 0, 0});     // mp_ExtINT -> LINT0 of APIC 0
  append(table, MpcIntsrc{4, 1, 0, 0, 0, 0xFF, 1});  // mp_NMI -> LINT1 of all APICs
  entries += 2;
  auto* hdr = reinterpret_cast<MpcTable*>(table.data());
  hdr->length = static_cast<uint16_t>(table.size());
  hdr->oemcount = entries;
  hdr->checksum = checksum(table.data(), table.size());

  MpfIntel mpf{};
  std::memcpy(mpf.signature, "_MP_", 4);
  mpf.physptr = static_cast<uint32_t>(kEbdaStart + sizeof(MpfIntel));
  mpf.length = 1;
  mpf.specification = 4;
  mpf.checksum = checksum(reinterpret_cast<const uint8_t*>(&mpf), sizeof(mpf));
  if (sizeof(mpf) + table.size() > 0xA0000 - kEbdaStart) {
    return fail(Errc::kTooLarge, "MP table does not fit in the EBDA");
  }
  NV_TRY(memory.writeObj(GuestAddress(kEbdaStart), mpf));
  return memory.write(GuestAddress(kEbdaStart + sizeof(mpf)), table);
}

}  // namespace nv::vmm::x86_64
