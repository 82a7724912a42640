// SPDX-License-Identifier: Apache-2.0
// ELF loader tests: a valid image loads; crafted bad images are rejected with clear errors.
#include "vmm/loader/elf_loader.h"

#include <elf.h>
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <vector>

#include "tests/support/fake_guest_memory.h"

namespace nv::vmm::loader {
namespace {

using testing::FakeGuestMemory;

constexpr uint64_t kLoadAddr = 0x200000;

// A minimal valid ELF64: header, 2 program headers (PT_LOAD, PT_NOTE), payload, note.
struct ElfImage {
  std::vector<uint8_t> bytes;
  Elf64_Ehdr* ehdr() { return reinterpret_cast<Elf64_Ehdr*>(bytes.data()); }
  Elf64_Phdr* phdr(size_t i) {
    return reinterpret_cast<Elf64_Phdr*>(bytes.data() + sizeof(Elf64_Ehdr) + i * sizeof(Elf64_Phdr));
  }
  std::span<const uint8_t> span() const { return bytes; }
};

ElfImage makeElf(bool with_pvh_note = true) {
  ElfImage img;
  const size_t payload_off = 0x100;
  const size_t payload_len = 64;
  const size_t note_off = payload_off + payload_len;
  img.bytes.assign(note_off + 20, 0);
  Elf64_Ehdr* e = img.ehdr();
  std::memcpy(e->e_ident, ELFMAG, SELFMAG);
  e->e_ident[EI_CLASS] = ELFCLASS64;
  e->e_ident[EI_DATA] = ELFDATA2LSB;
  e->e_ident[EI_VERSION] = EV_CURRENT;
  e->e_type = ET_EXEC;
  e->e_machine = EM_X86_64;
  e->e_version = EV_CURRENT;
  e->e_entry = kLoadAddr + 8;
  e->e_phoff = sizeof(Elf64_Ehdr);
  e->e_ehsize = sizeof(Elf64_Ehdr);
  e->e_phentsize = sizeof(Elf64_Phdr);
  e->e_phnum = 2;
  Elf64_Phdr* load = img.phdr(0);
  load->p_type = PT_LOAD;
  load->p_offset = payload_off;
  load->p_paddr = load->p_vaddr = kLoadAddr;
  load->p_filesz = payload_len;
  load->p_memsz = payload_len + 4096;  // with bss
  for (size_t i = 0; i < payload_len; ++i) {
    img.bytes[payload_off + i] = static_cast<uint8_t>(i + 1);
  }
  Elf64_Phdr* note = img.phdr(1);
  note->p_type = PT_NOTE;
  note->p_offset = note_off;
  note->p_filesz = 20;
  const uint32_t hdr[3] = {4, 4, with_pvh_note ? 18U : 5U};
  std::memcpy(img.bytes.data() + note_off, hdr, 12);
  std::memcpy(img.bytes.data() + note_off + 12, "Xen", 4);
  const uint32_t pvh = kLoadAddr + 0x10;
  std::memcpy(img.bytes.data() + note_off + 16, &pvh, 4);
  return img;
}

TEST(ElfLoader, ValidImage_LoadsSegmentZeroesBssAndFindsPvhEntry) {
  FakeGuestMemory memory(16 << 20);
  std::memset(memory.at(kLoadAddr + 64), 0xCC, 4096);  // stale bytes where bss goes
  ElfImage img = makeElf();
  auto kernel = loadElf(img.span(), memory);
  ASSERT_TRUE(kernel) << kernel.error().message();
  EXPECT_EQ(kernel->entry, kLoadAddr + 8);
  ASSERT_TRUE(kernel->pvh_entry.has_value());
  EXPECT_EQ(*kernel->pvh_entry, kLoadAddr + 0x10);
  EXPECT_EQ(kernel->end, kLoadAddr + 64 + 4096);
  EXPECT_EQ(*memory.at(kLoadAddr), 1);
  EXPECT_EQ(*memory.at(kLoadAddr + 63), 64);
  EXPECT_EQ(*memory.at(kLoadAddr + 64), 0);
  EXPECT_EQ(*memory.at(kLoadAddr + 64 + 4095), 0);
}

TEST(ElfLoader, NoPvhNote_EntryOnly) {
  FakeGuestMemory memory(16 << 20);
  auto kernel = loadElf(makeElf(false).span(), memory);
  ASSERT_TRUE(kernel);
  EXPECT_FALSE(kernel->pvh_entry.has_value());
}

struct BadCase {
  const char* name;
  std::function<void(ElfImage&)> corrupt;
  const char* expect;  // substring of the error
};

class ElfLoaderBad : public ::testing::TestWithParam<BadCase> {};

TEST_P(ElfLoaderBad, Rejected_WithErrorNamingTheProblem) {
  FakeGuestMemory memory(16 << 20);
  ElfImage img = makeElf();
  GetParam().corrupt(img);
  auto kernel = loadElf(img.span(), memory);
  ASSERT_FALSE(kernel) << GetParam().name;
  EXPECT_NE(kernel.error().message().find(GetParam().expect), std::string::npos)
      << kernel.error().message();
  EXPECT_EQ(kernel.error().message().find('\n'), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(
    Crafted, ElfLoaderBad,
    ::testing::Values(
        BadCase{"truncated", [](ElfImage& i) { i.bytes.resize(40); }, "shorter than an ELF header"},
        BadCase{"magic", [](ElfImage& i) { i.bytes[1] = 'X'; }, "no ELF magic"},
        BadCase{"class32", [](ElfImage& i) { i.ehdr()->e_ident[EI_CLASS] = ELFCLASS32; }, "EI_CLASS"},
        BadCase{"bigendian", [](ElfImage& i) { i.ehdr()->e_ident[EI_DATA] = ELFDATA2MSB; }, "EI_DATA"},
        BadCase{"version", [](ElfImage& i) { i.ehdr()->e_version = 7; }, "version"},
        BadCase{"machine", [](ElfImage& i) { i.ehdr()->e_machine = EM_AARCH64; }, "e_machine"},
        BadCase{"type", [](ElfImage& i) { i.ehdr()->e_type = ET_DYN; }, "e_type"},
        BadCase{"ehsize", [](ElfImage& i) { i.ehdr()->e_ehsize = 10; }, "e_ehsize"},
        BadCase{"phentsize", [](ElfImage& i) { i.ehdr()->e_phentsize = 32; }, "e_phentsize"},
        BadCase{"phnum0", [](ElfImage& i) { i.ehdr()->e_phnum = 0; }, "e_phnum"},
        BadCase{"phnumhuge", [](ElfImage& i) { i.ehdr()->e_phnum = 0xFFFF; }, "e_phnum"},
        BadCase{"phoff", [](ElfImage& i) { i.ehdr()->e_phoff = ~0ULL - 8; }, "program header table"},
        BadCase{"entrylow", [](ElfImage& i) { i.ehdr()->e_entry = 0x1000; }, "below 1 MiB"},
        BadCase{"entryoutside", [](ElfImage& i) { i.ehdr()->e_entry = 0x900000; }, "not inside a loaded"},
        BadCase{"filesz", [](ElfImage& i) { i.phdr(0)->p_filesz = 1 << 20; }, "outside the file"},
        BadCase{"offsetwrap", [](ElfImage& i) { i.phdr(0)->p_offset = ~0ULL - 4; }, "outside the file"},
        BadCase{"memsz", [](ElfImage& i) { i.phdr(0)->p_memsz = 8; }, "p_filesz > p_memsz"},
        BadCase{"paddrlow", [](ElfImage& i) { i.phdr(0)->p_paddr = 0x7000; }, "below 1 MiB"},
        BadCase{"paddrwrap", [](ElfImage& i) { i.phdr(0)->p_paddr = ~0ULL - 16; }, "guest RAM"},
        BadCase{"beyondram", [](ElfImage& i) { i.phdr(0)->p_paddr = 16 << 20; }, "guest RAM"},
        BadCase{"memszhuge", [](ElfImage& i) { i.phdr(0)->p_memsz = ~0ULL; }, "guest RAM"},
        BadCase{"noload", [](ElfImage& i) { i.phdr(0)->p_type = PT_NULL; }, "no PT_LOAD"},
        BadCase{"note", [](ElfImage& i) { i.phdr(1)->p_filesz = 1 << 20; }, "PT_NOTE"}),
    [](const ::testing::TestParamInfo<BadCase>& param_info) { return std::string(param_info.param.name); });

TEST(ElfLoader, TruncatedNote_IgnoredNotOverread) {
  FakeGuestMemory memory(16 << 20);
  ElfImage img = makeElf();
  // namesz claims more bytes than the note segment has.
  const uint32_t big = 1000;
  std::memcpy(img.bytes.data() + img.phdr(1)->p_offset, &big, 4);
  auto kernel = loadElf(img.span(), memory);
  ASSERT_TRUE(kernel);
  EXPECT_FALSE(kernel->pvh_entry.has_value());
}

TEST(ElfLoader, ReadFile_MissingOrTooBig) {
  EXPECT_FALSE(readFile("/nonexistent/file", 100));
  EXPECT_FALSE(readFile("/proc/self/exe", 10));
}

}  // namespace
}  // namespace nv::vmm::loader
