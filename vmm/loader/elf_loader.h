// SPDX-License-Identifier: Apache-2.0
// ELF64 kernel loader: copies the PT_LOAD segments of a vmlinux (or a test guest) into guest
// RAM at their physical addresses and finds the entry points (64-bit and PVH).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "common/result.h"
#include "vmm/memory/guest_memory.h"

namespace nv::vmm::loader {

struct LoadedKernel {
  uint64_t entry = 0;                 // e_entry: Linux 64-bit boot protocol entry
  std::optional<uint32_t> pvh_entry;  // XEN_ELFNOTE_PHYS32_ENTRY, when present
  uint64_t end = 0;                   // first byte above all loaded segments
};

inline constexpr uint32_t kXenElfNotePhys32Entry = 18;

// Validates every header field the loader uses (class, data, version, machine, type, header
// sizes, program header table bounds, segment bounds and overlap with the file, memsz >=
// filesz, load addresses >= 1 MiB and inside guest RAM, entry inside a loaded segment, note
// sizes) and loads the image. Errors name the offending field.
[[nodiscard]] Result<LoadedKernel> loadElf(std::span<const uint8_t> image,
                                           const GuestMemory& memory);

// Reads a whole file (at most `max_bytes`).
[[nodiscard]] Result<std::string> readFile(const std::string& path, uint64_t max_bytes);

}  // namespace nv::vmm::loader
