// SPDX-License-Identifier: Apache-2.0
// The qemu command line and the libvirt domain XML built from a VmSpec.
#include <unistd.h>

#include <algorithm>
#include <fstream>

#include <gtest/gtest.h>

#include "runtime/libvirt_driver.h"
#include "runtime/qemu_driver.h"
#include "runtime/vm.h"

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
  spec.disks = {{.path = "/img/rootfs.erofs", .serial = "rootfs", .read_only = true}};
  spec.cmdline = "nanovisor.log=debug";
  return spec;
}

// The value following `flag` in argv, or "" when absent.
std::string argAfter(const std::vector<std::string>& args, const std::string& flag) {
  auto it = std::find(args.begin(), args.end(), flag);
  return (it == args.end() || it + 1 == args.end()) ? "" : *(it + 1);
}

TEST(LogTail, LastNonEmptyLinesJoinedOnOneLine) {
  const std::string path = "/tmp/nv-logtail-" + std::to_string(::getpid());
  std::ofstream(path) << "first\n\nsecond\nthird\n\n";
  EXPECT_EQ(logTail(path, 2), "second; third");
  EXPECT_EQ(logTail(path, 10), "first; second; third");
  EXPECT_EQ(logTail(path + ".missing", 2), "");
  ::unlink(path.c_str());
}

TEST(QemuArgs, Microvm_TcgDirectBootWithAgentChannel) {
  auto args = qemuArgs(sampleSpec(), QemuOptions{});
  EXPECT_EQ(argAfter(args, "-accel"), "tcg,tb-size=128");
  EXPECT_EQ(argAfter(args, "-M"), "microvm,x-option-roms=off,rtc=off,acpi=off");
  EXPECT_EQ(argAfter(args, "-smp"), "2");
  EXPECT_EQ(argAfter(args, "-m"), "512M");
  EXPECT_EQ(argAfter(args, "-kernel"), "/k/vmlinux");
  EXPECT_NE(std::find(args.begin(), args.end(), "-no-reboot"), args.end());
  EXPECT_NE(std::find(args.begin(), args.end(),
                      "virtserialport,chardev=agent,name=io.nanovisor.agent"),
            args.end());
  EXPECT_EQ(argAfter(args, "-serial"), "file:/run/nanovisor/sb1/console.log");
}

TEST(QemuArgs, Cmdline_HasChannelPciOffAndSpecExtras) {
  auto cmdline = argAfter(qemuArgs(sampleSpec(), QemuOptions{}), "-append");
  EXPECT_NE(cmdline.find("nanovisor.channel=serial"), std::string::npos);
  EXPECT_NE(cmdline.find("pci=off"), std::string::npos);
  EXPECT_EQ(cmdline.substr(cmdline.size() - 19), "nanovisor.log=debug");
}

TEST(QemuArgs, ReadOnlyDisk_IsBlockdevWithSerial) {
  auto args = qemuArgs(sampleSpec(), QemuOptions{});
  EXPECT_EQ(argAfter(args, "-blockdev"),
            "driver=raw,node-name=node-rootfs,read-only=on,file.driver=file,"
            "file.filename=/img/rootfs.erofs");
  auto devices = std::count(args.begin(), args.end(), "virtio-blk-device,drive=node-rootfs,serial=rootfs");
  EXPECT_EQ(devices, 1);
}

TEST(QemuArgs, PciMachine_UsesPcAndPciDevices) {
  auto spec = sampleSpec();
  spec.pci = true;
  auto args = qemuArgs(spec, QemuOptions{.accel = Accel::kKvm});
  EXPECT_EQ(argAfter(args, "-M"), "pc");
  EXPECT_EQ(argAfter(args, "-accel"), "kvm");
  EXPECT_EQ(argAfter(args, "-cpu"), "host");
  EXPECT_NE(std::find(args.begin(), args.end(), "virtio-serial-pci,id=serial0"), args.end());
  EXPECT_EQ(argAfter(args, "-append").find("pci=off"), std::string::npos);
}

TEST(QemuArgs, Sandbox_OnByDefault) {
  auto args = qemuArgs(sampleSpec(), QemuOptions{});
  EXPECT_EQ(argAfter(args, "-sandbox"),
            "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny");
}

TEST(LibvirtXml, PcDomainWithChannelDiskAndDestroyOnReboot) {
  auto xml = libvirtDomainXml(sampleSpec(), LibvirtOptions{});
  EXPECT_NE(xml.find("<domain type='qemu'>"), std::string::npos);
  EXPECT_NE(xml.find("machine='pc'"), std::string::npos);
  EXPECT_NE(xml.find("<kernel>/k/bzImage</kernel>"), std::string::npos);
  EXPECT_NE(xml.find("<on_reboot>destroy</on_reboot>"), std::string::npos);
  EXPECT_NE(xml.find("<target type='virtio' name='io.nanovisor.agent'/>"), std::string::npos);
  EXPECT_NE(xml.find("<serial>rootfs</serial><readonly/>"), std::string::npos);
  EXPECT_NE(xml.find("<memory unit='MiB'>512</memory>"), std::string::npos);
}

TEST(LibvirtXml, HostileValues_AreEscaped) {
  auto spec = sampleSpec();
  spec.cmdline = "a='<x>&\"";
  auto xml = libvirtDomainXml(spec, LibvirtOptions{});
  EXPECT_NE(xml.find("a=&apos;&lt;x&gt;&amp;&quot;"), std::string::npos);
  EXPECT_EQ(xml.find("<x>"), std::string::npos);
}

TEST(VmSpec, Validate_RejectsBadIdAndMissingKernel) {
  VmSpec spec = sampleSpec();
  spec.id = "../etc";
  auto bad_id = spec.validate();
  ASSERT_FALSE(bad_id);
  EXPECT_NE(bad_id.error().message().find("sandbox id"), std::string::npos);
  spec.id = "ok";
  spec.dir = "/";
  auto no_kernel = spec.validate();
  ASSERT_FALSE(no_kernel);
  EXPECT_NE(no_kernel.error().message().find("make kernel"), std::string::npos);
}

}  // namespace
}  // namespace nv::runtime
