// SPDX-License-Identifier: Apache-2.0
// The KVM capability probe: a hand-assembled guest that takes #UD through its own IDT.
#include "vmm/probe/probe.h"

#include <elf.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "common/syscall.h"
#include "common/unique_fd.h"
#include "vmm/vmm.h"

namespace nv::vmm::probe {
namespace {

constexpr uint64_t kFileOffset = 0x1000;
constexpr uint64_t kImageBytes = 0x300;
constexpr uint64_t kIdtr = 0x100040;

void put(std::string& image, uint64_t gpa, std::initializer_list<uint8_t> bytes) {
  std::memcpy(image.data() + kFileOffset + (gpa - kProbeEntry), std::data(bytes), bytes.size());
}
void put32(std::string& image, uint64_t at, uint32_t v) { std::memcpy(image.data() + at, &v, 4); }

}  // namespace

std::string probeGuestElf() {
  std::string image(kFileOffset + kImageBytes, '\0');
  Elf64_Ehdr ehdr{};
  std::memcpy(ehdr.e_ident, ELFMAG, SELFMAG);
  ehdr.e_ident[EI_CLASS] = ELFCLASS64;
  ehdr.e_ident[EI_DATA] = ELFDATA2LSB;
  ehdr.e_ident[EI_VERSION] = EV_CURRENT;
  ehdr.e_type = ET_EXEC;
  ehdr.e_machine = EM_X86_64;
  ehdr.e_version = EV_CURRENT;
  ehdr.e_entry = kProbeEntry;
  ehdr.e_phoff = sizeof(Elf64_Ehdr);
  ehdr.e_ehsize = sizeof(Elf64_Ehdr);
  ehdr.e_phentsize = sizeof(Elf64_Phdr);
  ehdr.e_phnum = 1;
  ehdr.e_shentsize = sizeof(Elf64_Shdr);
  Elf64_Phdr phdr{};
  phdr.p_type = PT_LOAD;
  phdr.p_flags = PF_R | PF_W | PF_X;
  phdr.p_offset = kFileOffset;
  phdr.p_vaddr = kProbeEntry;
  phdr.p_paddr = kProbeEntry;
  phdr.p_filesz = kImageBytes;
  phdr.p_memsz = kImageBytes;
  phdr.p_align = 0x1000;
  std::memcpy(image.data(), &ehdr, sizeof ehdr);
  std::memcpy(image.data() + sizeof ehdr, &phdr, sizeof phdr);

  // Entry (64-bit mode, the VMM's identity map): lidt [kIdtr]; ud2; then, once the handler
  // returned, out 0x31 to the debug-exit port.
  put(image, kProbeEntry, {0x0F, 0x01, 0x1C, 0x25});  // lidt [disp32]
  put32(image, kFileOffset + 4, static_cast<uint32_t>(kIdtr));
  put(image, kProbeEntry + 8, {0x0F, 0x0B,                // ud2: #UD through the IDT
                               0xCC,                      // int3: #BP through the IDT
                               0xB0, kProbeHandled,       // mov al, 0x31 (back from both)
                               0xE6, 0xF4,                // out 0xF4, al
                               0xF4});                    // hlt
  // The #UD handler steps over the ud2 in the saved RIP and returns with iretq; the #BP
  // handler just returns (int3 is a trap: the saved RIP is already past it).
  put(image, kProbeHandler, {0x48, 0x83, 0x04, 0x24, 0x02,  // add qword [rsp], 2
                             0x48, 0xCF});                  // iretq
  put(image, kProbeBpHandler, {0x48, 0xCF});                // iretq
  // IDTR: limit, base.
  const uint16_t limit = 16 * 32 - 1;
  const uint64_t base = kProbeIdt;
  std::memcpy(image.data() + kFileOffset + (kIdtr - kProbeEntry), &limit, 2);
  std::memcpy(image.data() + kFileOffset + (kIdtr - kProbeEntry) + 2, &base, 8);
  // IDT entries 6 (#UD) and 3 (#BP): 64-bit interrupt gates, present, DPL 0, selector 0x08.
  auto gate = [&](uint8_t vector, uint64_t handler) {
    uint8_t g[16] = {};
    g[0] = static_cast<uint8_t>(handler);
    g[1] = static_cast<uint8_t>(handler >> 8);
    g[2] = 0x08;
    g[5] = 0x8E;
    g[6] = static_cast<uint8_t>(handler >> 16);
    g[7] = static_cast<uint8_t>(handler >> 24);
    std::memcpy(image.data() + kFileOffset + (kProbeIdt - kProbeEntry) + 16 * vector, g,
                sizeof g);
  };
  gate(kProbeVectorUd, kProbeHandler);
  gate(kProbeVectorBp, kProbeBpHandler);
  return image;
}

ProbeResult runProbe(std::chrono::milliseconds timeout) {
  ProbeResult result;
  // The image goes to the VMM's ELF loader through a memfd; nothing touches the filesystem.
  UniqueFd fd(::memfd_create("nanovisor-probe", MFD_CLOEXEC));
  if (!fd) {
    result.detail = fmt::format("no: memfd_create: {}", std::strerror(errno));
    return result;
  }
  const std::string image = probeGuestElf();
  if (retryOnEintr([&] { return ::write(fd.get(), image.data(), image.size()); }) !=
      static_cast<ssize_t>(image.size())) {
    result.detail = fmt::format("no: writing the probe image: {}", std::strerror(errno));
    return result;
  }
  VmConfig config;
  config.kernel = fmt::format("/proc/self/fd/{}", fd.get());
  config.cmdline = "";
  config.memory_mib = kMinMemoryMib;
  config.console = "";
  auto vmm = Vmm::create(config);
  if (!vmm) {
    result.detail = "no: " + vmm.error().message();
    return result;
  }
  std::mutex mutex;
  std::condition_variable cv;
  bool done = false;
  std::thread watchdog([&] {
    std::unique_lock lock(mutex);
    if (!cv.wait_for(lock, timeout, [&] { return done; })) {
      (*vmm)->stop(StopReason::kHost, 0, "timeout");
    }
  });
  VmExit exit = (*vmm)->run();
  {
    std::lock_guard lock(mutex);
    done = true;
  }
  cv.notify_all();
  watchdog.join();
  if (exit.reason == StopReason::kDebugExit && exit.status == kProbeHandled) {
    result.unmodified_guests = true;
    result.detail =
        "yes: the probe guest took #UD and #BP (int3) through its IDT and returned with iretq";
  } else if (exit.reason == StopReason::kError &&
             exit.message.find("internal error") != std::string::npos) {
    result.detail =
        "no: KVM_EXIT_INTERNAL_ERROR when the probe guest took an exception through its IDT "
        "(a paravirtual KVM such as PVM runs unmodified guests in its instruction emulator); "
        "stock Linux guests cannot boot here";
  } else if (exit.reason == StopReason::kHost) {
    result.detail = fmt::format("no: the probe guest did not answer within {} ms",
                                timeout.count());
  } else {
    result.detail = "no: the probe guest stopped unexpectedly: " + exit.message;
  }
  return result;
}

}  // namespace nv::vmm::probe
