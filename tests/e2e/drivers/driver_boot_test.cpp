// SPDX-License-Identifier: Apache-2.0
// Each driver boots the guest kernel + test init (which prints its kernel release and reboots)
// and the VM ends by itself; nothing is left running afterwards.
#include <signal.h>
#include <stdlib.h>

#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "common/subprocess.h"
#include "runtime/libvirt_driver.h"
#include "runtime/qemu_driver.h"

namespace nv::runtime {
namespace {

using std::chrono::milliseconds;

// True when `pid` no longer runs: gone, or a zombie its parent has not reaped yet (libvirtd
// reaps its QEMUs on its own schedule).
bool processGone(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string content((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  auto close = content.rfind(')');
  return content.empty() || (close != std::string::npos && content.substr(close + 2, 1) == "Z");
}

class DriverBootTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* src = std::getenv("NV_SOURCE_DIR");
    const char* build = std::getenv("NV_BUILD_DIR");
    ASSERT_TRUE(src && build) << "run through ctest (NV_SOURCE_DIR/NV_BUILD_DIR unset)";
    auto dir = runCommand({std::string(src) + "/guest-kernel/build.sh", "--dir"}, milliseconds(10000));
    if (!dir || dir->exit_code != 0) GTEST_SKIP() << "guest kernel not built; run 'make kernel'";
    kernel_dir_ = dir->output.substr(0, dir->output.find('\n'));
    initramfs_ = std::string(build) + "/guest-kernel/testinit/testinit.cpio.gz";
    char tmpl[] = "/tmp/nv-driver-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  VmSpec spec(const std::string& id) const {
    VmSpec s;
    s.id = id;
    s.dir = dir_;
    s.kernel = kernel_dir_ / "vmlinux";
    s.initramfs = initramfs_;
    s.memory_mib = 128;
    return s;
  }

  // qemu keeps its console log beside its sockets in <dir>/vm; libvirt writes <dir>.
  std::string console() const {
    const auto qemu = dir_ / "vm" / "console.log";
    std::ifstream in(std::filesystem::exists(qemu) ? qemu : dir_ / "console.log");
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  std::filesystem::path kernel_dir_;
  std::filesystem::path initramfs_;
  std::filesystem::path dir_;
};

TEST_F(DriverBootTest, Qemu_BootsGuestKernelToInitAndExits) {
  QemuDriver driver(QemuOptions{});
  auto vm = driver.create(spec("qemu-boot"));
  ASSERT_TRUE(vm) << vm.error().message();
  pid_t pid = (*vm)->vmmPid();
  ASSERT_TRUE((*vm)->wait(milliseconds(60000))) << console();
  EXPECT_NE(console().find("nanovisor-testinit: kernel 6.1"), std::string::npos) << console();
  EXPECT_NE(console().find("-nanovisor"), std::string::npos);
  EXPECT_TRUE(processGone(pid)) << "qemu still running";
}

TEST_F(DriverBootTest, Qemu_KillStopsRunningVm) {
  QemuDriver driver(QemuOptions{});
  auto s = spec("qemu-kill");
  s.initramfs = kernel_dir_ / "config";  // not an initramfs: the kernel panics and waits
  auto vm = driver.create(s);
  ASSERT_TRUE(vm) << vm.error().message();
  pid_t pid = (*vm)->vmmPid();
  auto stats = (*vm)->stats();
  ASSERT_TRUE(stats) << stats.error().message();
  EXPECT_GT(stats->vmm_rss_bytes, 1u << 20);
  (*vm)->kill();
  EXPECT_TRUE(processGone(pid)) << "qemu still running after kill()";
  EXPECT_NE((*vm)->exitReason().find("signal 9"), std::string::npos) << (*vm)->exitReason();
}

TEST_F(DriverBootTest, Qemu_MissingBinary_IsOneLineError) {
  QemuDriver driver(QemuOptions{.binary = "/nonexistent/qemu"});
  auto vm = driver.create(spec("qemu-missing"));
  ASSERT_FALSE(vm);
  EXPECT_NE(vm.error().message().find("/nonexistent/qemu not found"), std::string::npos)
      << vm.error().message();
}

TEST_F(DriverBootTest, Libvirt_BootsGuestKernelToInitAndDomainGoes) {
  LibvirtDriver driver(LibvirtOptions{});
  auto vm = driver.create(spec("libvirt-boot"));
  if (!vm && vm.error().is(Errc::kUnavailable) &&
      vm.error().message().find("not reachable") != std::string::npos) {
    GTEST_SKIP() << vm.error().message();
  }
  ASSERT_TRUE(vm) << vm.error().message();
  pid_t pid = (*vm)->vmmPid();
  ASSERT_TRUE((*vm)->wait(milliseconds(60000))) << console();
  EXPECT_NE(console().find("nanovisor-testinit: kernel 6.1"), std::string::npos) << console();
  vm->reset();
  EXPECT_TRUE(processGone(pid)) << "qemu still running";
}

TEST_F(DriverBootTest, Libvirt_Down_ErrorSaysHowToStart) {
  LibvirtDriver driver(LibvirtOptions{.uri = "qemu+unix:///system?socket=/nonexistent.sock"});
  auto vm = driver.create(spec("libvirt-down"));
  ASSERT_FALSE(vm);
  EXPECT_NE(vm.error().message().find("libvirtd -d"), std::string::npos) << vm.error().message();
}

}  // namespace
}  // namespace nv::runtime
