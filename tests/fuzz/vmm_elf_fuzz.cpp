// SPDX-License-Identifier: Apache-2.0
// Fuzzes the ELF64 kernel loader with arbitrary images into 4 MiB of fake guest RAM.
#include <cstdint>
#include <span>

#include "tests/support/fake_guest_memory.h"
#include "vmm/loader/elf_loader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static nv::vmm::testing::FakeGuestMemory memory(4 << 20);
  auto kernel = nv::vmm::loader::loadElf(std::span<const uint8_t>(data, size), memory);
  if (kernel && (kernel->entry < 0x100000 || kernel->end > (4U << 20))) {
    __builtin_trap();
  }
  return 0;
}
