// SPDX-License-Identifier: Apache-2.0
// The nanovisor-vmm command line the builtin driver builds from a VmSpec.
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "runtime/builtin_driver.h"
#include "runtime/qemu_driver.h"
#include "runtime/vmm_host.h"

namespace nv::runtime {
namespace {

VmSpec sampleSpec() {
  VmSpec spec;
  spec.id = "sb1";
  spec.dir = "/run/nanovisor/sb1";
  spec.kernel = "/k/vmlinux";
  spec.initramfs = "/k/initramfs.cpio.gz";
  spec.cpus = 2;
  spec.memory_mib = 512;
  spec.disks = {{.path = "/img/rootfs.erofs", .serial = "rootfs", .read_only = true},
                {.path = "/img/scratch.ext4", .serial = "scratch", .read_only = false}};
  spec.cmdline = "nanovisor.log=debug";
  return spec;
}

std::string argAfter(const std::vector<std::string>& args, const std::string& flag) {
  auto it = std::find(args.begin(), args.end(), flag);
  return (it == args.end() || it + 1 == args.end()) ? "" : *(it + 1);
}

TEST(BuiltinArgs, KernelInitramfsCpusMemoryAndSockets) {
  auto args = builtinArgs(sampleSpec(), BuiltinOptions{.binary = "/opt/nv/bin/nanovisor-vmm"});
  EXPECT_EQ(args[0], "/opt/nv/bin/nanovisor-vmm");
  EXPECT_EQ(argAfter(args, "--kernel"), "/k/vmlinux");
  EXPECT_EQ(argAfter(args, "--initramfs"), "/k/initramfs.cpio.gz");
  EXPECT_EQ(argAfter(args, "--cpus"), "2");
  EXPECT_EQ(argAfter(args, "--memory"), "512");
  // The console is the VMM's stdout: the driver opens <dir>/console.log for it.
  EXPECT_EQ(argAfter(args, "--console"), "-");
  EXPECT_EQ(argAfter(args, "--vsock-uds"), "/run/nanovisor/sb1/vsock.sock");
  EXPECT_EQ(argAfter(args, "--api-sock"), "/run/nanovisor/sb1/vmm.sock");
  EXPECT_NE(std::find(args.begin(), args.end(), "--rng"), args.end());
}

TEST(BuiltinArgs, Cmdline_AgentOverVsockThenSpecExtras) {
  auto args = builtinArgs(sampleSpec(), BuiltinOptions{});
  const std::string cmdline = argAfter(args, "--cmdline");
  EXPECT_EQ(cmdline, baseKernelCmdline(false, "vsock") + " nanovisor.log=debug");
  EXPECT_NE(cmdline.find("nanovisor.channel=vsock"), std::string::npos);
  EXPECT_NE(cmdline.find("console=ttyS0"), std::string::npos);
}

TEST(BuiltinArgs, Disks_InOrderWithModeAndSerial) {
  auto args = builtinArgs(sampleSpec(), BuiltinOptions{});
  std::vector<std::string> disks;
  for (size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == "--disk") disks.push_back(args[i + 1]);
  }
  ASSERT_EQ(disks.size(), 2U);
  EXPECT_EQ(disks[0], "/img/rootfs.erofs,ro,id=rootfs");
  EXPECT_EQ(disks[1], "/img/scratch.ext4,rw,id=scratch");
}

TEST(BuiltinArgs, DiskRateLimit_GoesOnEveryDisk) {
  auto spec = sampleSpec();
  spec.disk_limit = {RateLimit{1u << 20, 4u << 20}, RateLimit{100, 0}};
  auto args = builtinArgs(spec, BuiltinOptions{});
  EXPECT_NE(std::find(args.begin(), args.end(),
                      "/img/rootfs.erofs,ro,id=rootfs,bps=1048576:4194304,iops=100"),
            args.end());
  EXPECT_NE(std::find(args.begin(), args.end(),
                      "/img/scratch.ext4,rw,id=scratch,bps=1048576:4194304,iops=100"),
            args.end());
}

TEST(BuiltinDriver, PciSpecAndMissingBinary_RefusedWithReason) {
  BuiltinDriver driver(BuiltinOptions{.binary = "/nonexistent/nanovisor-vmm"});
  EXPECT_EQ(driver.name(), "builtin");
  VmSpec spec = sampleSpec();
  auto vm = driver.create(spec);  // the sandbox dir does not exist: validate() says so
  ASSERT_FALSE(vm);
  EXPECT_NE(vm.error().message().find("does not exist"), std::string::npos)
      << vm.error().message();
}

TEST(BuiltinDriver, Shares_RefusedNamingTheQemuDriver) {
  const std::string dir = "/tmp/nv-builtin-shares-" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  for (const char* file : {"/vmlinux", "/initramfs", "/rootfs.erofs"}) std::ofstream(dir + file) << "x";
  VmSpec spec = sampleSpec();
  spec.dir = dir;
  spec.kernel = dir + "/vmlinux";
  spec.initramfs = dir + "/initramfs";
  spec.disks = {{.path = dir + "/rootfs.erofs", .serial = "rootfs", .read_only = true}};
  spec.shares = {{.host_dir = dir, .tag = "volume0", .read_only = false}};
  BuiltinDriver driver(BuiltinOptions{.binary = "/nonexistent/nanovisor-vmm"});
  auto vm = driver.create(spec);
  std::filesystem::remove_all(dir);
  ASSERT_FALSE(vm);
  EXPECT_EQ(vm.error().message(),
            "the builtin driver has no virtio-9p for volumes (-v); use --hypervisor qemu");
}

TEST(BuiltinDriver, MissingBinary_NotFoundAndNothingLeftInTheSandboxDir) {
  const std::filesystem::path dir = "/tmp/nv-builtin-missing-" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  for (const char* file : {"vmlinux", "initramfs", "rootfs.erofs"}) {
    std::ofstream(dir / file) << "x";
  }
  VmSpec spec = sampleSpec();
  spec.dir = dir;
  spec.kernel = dir / "vmlinux";
  spec.initramfs = dir / "initramfs";
  spec.disks = {{.path = dir / "rootfs.erofs", .serial = "rootfs", .read_only = true}};
  BuiltinDriver driver(BuiltinOptions{.binary = dir / "missing-vmm"});
  auto vm = driver.create(spec);
  const bool vm_dir_left = std::filesystem::exists(dir / "vm");
  const bool jail_dir_left = std::filesystem::exists(dir / "jail");
  std::filesystem::remove_all(dir);
  ASSERT_FALSE(vm);
  EXPECT_EQ(vm.error().message(), (dir / "missing-vmm").string() +
                                      " not found; build it (ninja nanovisor-vmm) or set "
                                      "vmm_binary in the config");
  EXPECT_FALSE(vm_dir_left);
  EXPECT_FALSE(jail_dir_left);
}

TEST(VmmHostFiles, Destroyed_RemovesTheVmDirButKeepsAConsoleLog) {
  const std::filesystem::path dir = "/tmp/nv-vmm-host-" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  {
    auto files = VmmHostFiles::create(dir, /*jail=*/true);
    ASSERT_TRUE(files) << files.error().message();
    EXPECT_EQ(files->vmDir(), dir / "vm");
    EXPECT_EQ(files->jailDir(), dir / "jail");
    std::ofstream(dir / "vm" / "vmm.sock") << "x";
    std::ofstream(dir / "outside") << "not the VMM's";
    std::filesystem::create_symlink(dir / "outside", dir / "vm" / "link");
  }
  const bool vm_gone = !std::filesystem::exists(dir / "vm");
  const bool jail_gone = !std::filesystem::exists(dir / "jail");
  const bool target_kept = std::filesystem::exists(dir / "outside");
  {
    auto files = VmmHostFiles::create(dir, /*jail=*/false);
    ASSERT_TRUE(files) << files.error().message();
    EXPECT_TRUE(files->jailDir().empty());
    std::ofstream(dir / "vm" / "qmp.sock") << "x";
    std::ofstream(dir / "vm" / "console.log") << "guest output";
  }
  const bool console_kept = std::filesystem::exists(dir / "vm" / "console.log");
  const bool socket_gone = !std::filesystem::exists(dir / "vm" / "qmp.sock");
  std::filesystem::remove_all(dir);
  EXPECT_TRUE(vm_gone);
  EXPECT_TRUE(jail_gone);
  EXPECT_TRUE(target_kept) << "a symlink in the VM dir was followed";
  EXPECT_TRUE(console_kept);
  EXPECT_TRUE(socket_gone);
}

}  // namespace
}  // namespace nv::runtime
