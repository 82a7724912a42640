// SPDX-License-Identifier: Apache-2.0
// Zero page, e820, cmdline and PVH start info.
#include "vmm/arch/x86_64/boot_params.h"

#include <asm/bootparam.h>

#include <fmt/format.h>

#include <algorithm>

#include "vmm/arch/x86_64/layout.h"

namespace nv::vmm::x86_64 {
namespace {

// Xen public/arch-x86/hvm/start_info.h (ABI, version 1).
struct HvmStartInfo {
  uint32_t magic;
  uint32_t version;
  uint32_t flags;
  uint32_t nr_modules;
  uint64_t modlist_paddr;
  uint64_t cmdline_paddr;
  uint64_t rsdp_paddr;
  uint64_t memmap_paddr;
  uint32_t memmap_entries;
  uint32_t reserved;
};
static_assert(sizeof(HvmStartInfo) == 56);
struct HvmModlistEntry {
  uint64_t paddr;
  uint64_t size;
  uint64_t cmdline_paddr;
  uint64_t reserved;
};
struct HvmMemmapEntry {
  uint64_t addr;
  uint64_t size;
  uint32_t type;
  uint32_t reserved;
};
static_assert(sizeof(HvmMemmapEntry) == 24);
constexpr uint32_t kHvmStartMagic = 0x336EC578;
constexpr uint64_t kPageSize = 4096;

}  // namespace

std::vector<RegionSpec> ramLayout(uint64_t bytes) {
  std::vector<RegionSpec> out;
  uint64_t low = std::min(bytes, kMmioHoleStart);
  out.push_back({GuestAddress(0), low});
  if (bytes > low) {
    out.push_back({GuestAddress(kMmioHoleEnd), bytes - low});
  }
  return out;
}

std::vector<E820Entry> buildE820(const GuestMemory& memory) {
  std::vector<E820Entry> map;
  map.push_back({0, kEbdaStart, kE820Ram});
  map.push_back({kEbdaStart, 0xA0000 - kEbdaStart, kE820Reserved});
  for (const GuestRegion& region : memory.regions()) {
    uint64_t start = std::max(region.start.value(), kHighMemStart);
    uint64_t end = region.start.value() + region.size;
    if (end > start) {
      map.push_back({start, end - start, kE820Ram});
    }
  }
  return map;
}

Result<uint64_t> initramfsAddress(const GuestMemory& memory, uint64_t size) {
  auto regions = memory.regions();
  if (regions.empty()) {
    return fail(Errc::kInvalidArgument, "no guest RAM");
  }
  uint64_t low_end = std::min(regions[0].start.value() + regions[0].size, kMmioHoleStart);
  // Keep the first 16 MiB + some for the kernel; the initramfs must fit above it.
  constexpr uint64_t kKernelReserve = 64ULL << 20;
  if (size > low_end || low_end - size < kKernelReserve) {
    return fail(Errc::kTooLarge, fmt::format("initramfs of {} bytes does not fit in {} MiB of low "
                                             "guest RAM", size, low_end >> 20));
  }
  return (low_end - size) & ~(kPageSize - 1);
}

Result<void> writeCmdline(const GuestMemory& memory, std::string_view cmdline) {
  if (cmdline.size() + 1 > kCmdlineMax) {
    return fail(Errc::kTooLarge, fmt::format("kernel cmdline of {} bytes exceeds {}",
                                             cmdline.size(), kCmdlineMax - 1));
  }
  if (cmdline.find('\0') != std::string_view::npos) {
    return fail(Errc::kInvalidArgument, "kernel cmdline contains a NUL byte");
  }
  NV_TRY(memory.write(GuestAddress(kCmdlineAddr),
                      std::span(reinterpret_cast<const uint8_t*>(cmdline.data()), cmdline.size())));
  return memory.writeObj<uint8_t>(GuestAddress(kCmdlineAddr + cmdline.size()), 0);
}

Result<void> writeZeroPage(const GuestMemory& memory, std::string_view cmdline,
                           std::optional<Initramfs> initramfs) {
  boot_params params{};
  params.hdr.type_of_loader = 0xFF;
  params.hdr.boot_flag = 0xAA55;
  params.hdr.header = 0x53726448;  // "HdrS"
  params.hdr.version = 0x020F;
  params.hdr.cmd_line_ptr = static_cast<uint32_t>(kCmdlineAddr);
  params.hdr.cmdline_size = static_cast<uint32_t>(cmdline.size() + 1);
  params.hdr.kernel_alignment = 0x01000000;
  params.hdr.loadflags = 0x01;  // LOADED_HIGH
  if (initramfs) {
    if (initramfs->addr + initramfs->size > 0xFFFFFFFFULL) {
      return fail(Errc::kInvalidArgument, "initramfs must lie below 4 GiB");
    }
    params.hdr.ramdisk_image = static_cast<uint32_t>(initramfs->addr);
    params.hdr.ramdisk_size = static_cast<uint32_t>(initramfs->size);
  }
  auto map = buildE820(memory);
  if (map.size() > E820_MAX_ENTRIES_ZEROPAGE) {
    return fail(Errc::kInternal, "e820 map too long for the zero page");
  }
  for (size_t i = 0; i < map.size(); ++i) {
    params.e820_table[i].addr = map[i].addr;
    params.e820_table[i].size = map[i].size;
    params.e820_table[i].type = map[i].type;
  }
  params.e820_entries = static_cast<uint8_t>(map.size());
  return memory.writeObj(GuestAddress(kZeroPageAddr), params);
}

Result<void> writePvhStartInfo(const GuestMemory& memory, std::optional<Initramfs> initramfs) {
  auto map = buildE820(memory);
  HvmStartInfo info{};
  info.magic = kHvmStartMagic;
  info.version = 1;
  info.cmdline_paddr = kCmdlineAddr;
  info.memmap_paddr = kPvhMemmapAddr;
  info.memmap_entries = static_cast<uint32_t>(map.size());
  for (size_t i = 0; i < map.size(); ++i) {
    HvmMemmapEntry entry{map[i].addr, map[i].size, map[i].type, 0};
    NV_TRY(memory.writeObj(GuestAddress(kPvhMemmapAddr + i * sizeof(entry)), entry));
  }
  if (initramfs) {
    info.nr_modules = 1;
    info.modlist_paddr = kPvhModlistAddr;
    NV_TRY(memory.writeObj(GuestAddress(kPvhModlistAddr),
                           HvmModlistEntry{initramfs->addr, initramfs->size, 0, 0}));
  }
  return memory.writeObj(GuestAddress(kPvhInfoAddr), info);
}

}  // namespace nv::vmm::x86_64
