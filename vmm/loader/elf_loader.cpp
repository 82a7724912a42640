// SPDX-License-Identifier: Apache-2.0
// ELF64 loader with strict validation (the image is a file: treat it as untrusted).
#include "vmm/loader/elf_loader.h"

#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cstring>

#include "common/syscall.h"
#include "common/unique_fd.h"

namespace nv::vmm::loader {
namespace {

constexpr uint64_t kHighMemStart = 0x100000;
constexpr uint16_t kMaxProgramHeaders = 128;

Unexpected bad(std::string what) {
  return fail(Errc::kInvalidArgument, "bad kernel ELF: " + std::move(what));
}

// True when [offset, offset + len) lies inside a buffer of `size` bytes.
bool inside(uint64_t offset, uint64_t len, uint64_t size) {
  return offset <= size && len <= size - offset;
}

template <class T>
T readAt(std::span<const uint8_t> image, uint64_t offset) {
  T value;
  std::memcpy(&value, image.data() + offset, sizeof(T));
  return value;
}

std::optional<uint32_t> parseNotes(std::span<const uint8_t> notes) {
  uint64_t pos = 0;
  while (inside(pos, sizeof(Elf64_Nhdr), notes.size())) {
    auto nhdr = readAt<Elf64_Nhdr>(notes, pos);
    pos += sizeof(Elf64_Nhdr);
    uint64_t name_len = (static_cast<uint64_t>(nhdr.n_namesz) + 3) & ~3ULL;
    uint64_t desc_len = (static_cast<uint64_t>(nhdr.n_descsz) + 3) & ~3ULL;
    if (!inside(pos, name_len, notes.size()) || !inside(pos + name_len, desc_len, notes.size())) {
      return std::nullopt;  // truncated note: ignore the rest
    }
    bool is_xen = nhdr.n_namesz == 4 && std::memcmp(notes.data() + pos, "Xen", 4) == 0;
    if (is_xen && nhdr.n_type == kXenElfNotePhys32Entry && nhdr.n_descsz >= 4) {
      return readAt<uint32_t>(notes, pos + name_len);
    }
    pos += name_len + desc_len;
  }
  return std::nullopt;
}

}  // namespace

Result<LoadedKernel> loadElf(std::span<const uint8_t> image, const GuestMemory& memory) {
  if (image.size() < sizeof(Elf64_Ehdr)) {
    return bad(fmt::format("file of {} bytes is shorter than an ELF header", image.size()));
  }
  auto ehdr = readAt<Elf64_Ehdr>(image, 0);
  if (std::memcmp(ehdr.e_ident, ELFMAG, SELFMAG) != 0) {
    return bad("no ELF magic (bzImage is not supported; use vmlinux)");
  }
  if (ehdr.e_ident[EI_CLASS] != ELFCLASS64) {
    return bad("EI_CLASS is not ELFCLASS64");
  }
  if (ehdr.e_ident[EI_DATA] != ELFDATA2LSB) {
    return bad("EI_DATA is not little endian");
  }
  if (ehdr.e_ident[EI_VERSION] != EV_CURRENT || ehdr.e_version != EV_CURRENT) {
    return bad("ELF version is not EV_CURRENT");
  }
  if (ehdr.e_machine != EM_X86_64) {
    return bad(fmt::format("e_machine {} is not x86-64", ehdr.e_machine));
  }
  if (ehdr.e_type != ET_EXEC) {
    return bad(fmt::format("e_type {} is not ET_EXEC", ehdr.e_type));
  }
  if (ehdr.e_ehsize != sizeof(Elf64_Ehdr)) {
    return bad(fmt::format("e_ehsize {}", ehdr.e_ehsize));
  }
  if (ehdr.e_phentsize != sizeof(Elf64_Phdr)) {
    return bad(fmt::format("e_phentsize {} (want {})", ehdr.e_phentsize, sizeof(Elf64_Phdr)));
  }
  if (ehdr.e_phnum == 0 || ehdr.e_phnum > kMaxProgramHeaders) {
    return bad(fmt::format("e_phnum {} outside 1..{}", ehdr.e_phnum, kMaxProgramHeaders));
  }
  if (!inside(ehdr.e_phoff, uint64_t{ehdr.e_phnum} * sizeof(Elf64_Phdr), image.size())) {
    return bad("program header table lies outside the file");
  }
  if (ehdr.e_entry < kHighMemStart) {
    return bad(fmt::format("e_entry {:#x} is below 1 MiB", ehdr.e_entry));
  }

  LoadedKernel kernel;
  kernel.entry = ehdr.e_entry;
  bool entry_loaded = false;
  int loads = 0;
  for (uint16_t i = 0; i < ehdr.e_phnum; ++i) {
    // Bounds: the whole table was checked to lie inside the file.
    auto phdr = readAt<Elf64_Phdr>(image, ehdr.e_phoff + uint64_t{i} * sizeof(Elf64_Phdr));
    if (phdr.p_type == PT_NOTE) {
      if (!inside(phdr.p_offset, phdr.p_filesz, image.size())) {
        return bad(fmt::format("PT_NOTE {} lies outside the file", i));
      }
      if (!kernel.pvh_entry) {
        kernel.pvh_entry = parseNotes(image.subspan(phdr.p_offset, phdr.p_filesz));
      }
      continue;
    }
    if (phdr.p_type != PT_LOAD) {
      continue;
    }
    if (!inside(phdr.p_offset, phdr.p_filesz, image.size())) {
      return bad(fmt::format("PT_LOAD {} (offset {:#x}, size {:#x}) lies outside the file", i,
                             phdr.p_offset, phdr.p_filesz));
    }
    if (phdr.p_filesz > phdr.p_memsz) {
      return bad(fmt::format("PT_LOAD {} has p_filesz > p_memsz", i));
    }
    GuestAddress dest(phdr.p_paddr);
    if (phdr.p_paddr < kHighMemStart) {
      return bad(fmt::format("PT_LOAD {} at {:#x} is below 1 MiB", i, phdr.p_paddr));
    }
    if (!dest.checkedAdd(phdr.p_memsz) || !memory.isRam(dest, phdr.p_memsz)) {
      return bad(fmt::format("PT_LOAD {} ({:#x}+{:#x}) does not fit in guest RAM", i,
                             phdr.p_paddr, phdr.p_memsz));
    }
    NV_TRY(memory.write(dest, image.subspan(phdr.p_offset, phdr.p_filesz)));
    // Zero the bss part (guest RAM is fresh, but be explicit about it).
    std::vector<std::span<uint8_t>> spans;
    NV_TRY(memory.hostSpans(dest.unchecked(phdr.p_filesz), phdr.p_memsz - phdr.p_filesz, spans));
    for (auto span : spans) {
      std::memset(span.data(), 0, span.size());
    }
    if (ehdr.e_entry >= phdr.p_paddr && ehdr.e_entry - phdr.p_paddr < phdr.p_memsz) {
      entry_loaded = true;
    }
    kernel.end = std::max(kernel.end, phdr.p_paddr + phdr.p_memsz);
    ++loads;
  }
  if (loads == 0) {
    return bad("no PT_LOAD segment");
  }
  if (!entry_loaded) {
    return bad(fmt::format("e_entry {:#x} is not inside a loaded segment", ehdr.e_entry));
  }
  return kernel;
}

Result<std::string> readFile(const std::string& path, uint64_t max_bytes) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    return failErrno(fmt::format("open {}", path));
  }
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0) {
    return failErrno(fmt::format("stat {}", path));
  }
  auto size = static_cast<uint64_t>(st.st_size);
  if (size > max_bytes) {
    return fail(Errc::kTooLarge, fmt::format("{} is {} bytes (limit {})", path, size, max_bytes));
  }
  std::string data(static_cast<size_t>(size), '\0');
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = retryOnEintr([&] { return ::read(fd.get(), data.data() + done, data.size() - done); });
    if (n < 0) {
      return failErrno(fmt::format("read {}", path));
    }
    if (n == 0) {
      break;
    }
    done += static_cast<size_t>(n);
  }
  data.resize(done);
  return data;
}

}  // namespace nv::vmm::loader
