// SPDX-License-Identifier: Apache-2.0
// Linux boot smoke test: the VMM boots the project's guest kernel (vmlinux). Where KVM runs
// unmodified guests the kernel must reach the initramfs's init; on a PVM host the kernel stops
// early (it needs its IDT), so the test checks what it printed before — the e820 map the VMM
// gave and the "Memory:" line — and then skips with "stopped at the host's PVM limit".
#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "vmm/arch/x86_64/boot_params.h"
#include "vmm/vmm.h"

namespace nv::vmm {
namespace {

namespace fs = std::filesystem;
// What guest-kernel/testinit prints once it runs as PID 1.
constexpr const char* kInitMarker = "nanovisor-testinit: kernel";

// Runs guest-kernel/build.sh --dir: prints the cache dir, exits non-zero when not built.
bool kernelDir(std::string* dir) {
  std::string cmd = std::string(NV_SOURCE_DIR) + "/guest-kernel/build.sh --dir 2>/dev/null";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (pipe == nullptr) {
    return false;
  }
  std::array<char, 512> buf{};
  std::string out;
  while (std::fgets(buf.data(), buf.size(), pipe) != nullptr) {
    out += buf.data();
  }
  int status = ::pclose(pipe);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) {
    out.pop_back();
  }
  *dir = out;
  return status == 0;
}

TEST(LinuxBoot, GuestKernel_PrintsOurE820ThenInitOrPvmLimit) {
  int fd = ::open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    GTEST_SKIP() << "/dev/kvm cannot be opened";
  }
  ::close(fd);
  std::string dir;
  if (!kernelDir(&dir)) {
    GTEST_SKIP() << "guest kernel not built (guest-kernel/build.sh; cache dir " << dir << ")";
  }
  fs::path vmlinux = fs::path(dir) / "vmlinux";
  if (!fs::exists(vmlinux)) {
    GTEST_SKIP() << "no vmlinux in " << dir;
  }
  fs::path console = fs::temp_directory_path() / ("nv-linux-boot-" + std::to_string(::getpid()));
  VmConfig config;
  config.kernel = vmlinux.string();
  config.cmdline = "console=ttyS0 earlyprintk=serial reboot=k panic=-1";
  fs::path initramfs = NV_TESTINIT_CPIO;
  if (fs::exists(initramfs)) {
    config.initramfs = initramfs.string();
  }
  config.memory_mib = 256;
  config.console = console.string();
  auto vmm = Vmm::create(config);
  ASSERT_TRUE(vmm) << vmm.error().message();
  std::atomic<bool> finished{false};
  std::thread watchdog([&] {
    // Every guest instruction is emulated on a PVM host, so boot speed depends on host load:
    // stop as soon as the kernel printed what this test checks (or init ran), else at 240 s.
    int memory_seen_at = -1;
    for (int i = 0; i < 2400 && !finished.load(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      std::ifstream in(console);
      std::stringstream ss;
      ss << in.rdbuf();
      const std::string text = ss.str();
      if (text.find(kInitMarker) != std::string::npos) break;
      // Where KVM runs unmodified guests init follows within a second or two; give it 10 s.
      if (memory_seen_at < 0 &&
          std::regex_search(text, std::regex("Memory: \\d+K/\\d+K available"))) {
        memory_seen_at = i;
      }
      if (memory_seen_at >= 0 && i - memory_seen_at >= 100) break;
    }
    (*vmm)->stop(StopReason::kHost, 0, "watchdog");
  });
  VmExit exit = (*vmm)->run();
  finished.store(true);
  watchdog.join();
  std::ifstream in(console);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string out = ss.str();
  fs::remove(console);

  // The kernel's "BIOS-provided physical RAM map" must list exactly our e820 entries.
  auto expected = x86_64::buildE820((*vmm)->memory());
  for (const auto& entry : expected) {
    char line[128];
    std::snprintf(line, sizeof line, "BIOS-e820: [mem 0x%016llx-0x%016llx] %s",
                  static_cast<unsigned long long>(entry.addr),
                  static_cast<unsigned long long>(entry.addr + entry.size - 1),
                  entry.type == x86_64::kE820Ram ? "usable" : "reserved");
    EXPECT_NE(out.find(line), std::string::npos) << "missing: " << line << "\n" << out;
  }
  EXPECT_TRUE(std::regex_search(out, std::regex("Memory: \\d+K/\\d+K available"))) << out;
  if (out.find(kInitMarker) != std::string::npos) {
    SUCCEED();
    return;
  }
  GTEST_SKIP() << "stopped at the host's PVM limit (" << exit.message << ")";
}

}  // namespace
}  // namespace nv::vmm
