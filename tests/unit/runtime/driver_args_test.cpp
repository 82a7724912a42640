// SPDX-License-Identifier: Apache-2.0
// The qemu command line and the libvirt domain XML built from a VmSpec.
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "runtime/host_probe.h"
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

TEST(GuestCrash, NamesTheLastPanicOrInitsDeathAndSanitizesIt) {
  const std::string path = "/tmp/nv-guestcrash-" + std::to_string(::getpid());
  std::ofstream(path) << "booting\nagent: created container\n";
  EXPECT_EQ(guestCrash(path), "");
  std::ofstream(path, std::ios::app)
      << "Kernel panic - not syncing: NMI: Not continuing\r\nCPU: 0 PID: 0\n";
  EXPECT_EQ(guestCrash(path), "the guest kernel panicked: NMI: Not continuing");
  std::ofstream(path, std::ios::app)
      << "Kernel panic - not syncing: Attempted to kill init! exitcode=0x0000000b\n";
  EXPECT_EQ(guestCrash(path), "the guest agent (PID 1) died: Attempted to kill init! "
                              "exitcode=0x0000000b");
  // The guest writes this file: escape sequences become '?', the reason stays one short line.
  std::ofstream(path, std::ios::app)
      << "Kernel panic - not syncing: \x1b[31mred" << std::string(500, 'x') << "\n";
  const std::string hostile = guestCrash(path);
  EXPECT_EQ(hostile.rfind("the guest kernel panicked: ?[31mred", 0), 0u) << hostile;
  EXPECT_EQ(hostile.size(), std::string("the guest kernel panicked: ").size() + 160);
  EXPECT_EQ(guestCrash(path + ".missing"), "");
  ::unlink(path.c_str());
}

TEST(QemuArgs, Microvm_TcgDirectBootWithAgentChannel) {
  auto args = qemuArgs(sampleSpec(), QemuOptions{});
  EXPECT_EQ(argAfter(args, "-accel"), "tcg,tb-size=128");
  EXPECT_EQ(argAfter(args, "-M"), "microvm,x-option-roms=off,rtc=on,acpi=off");
  EXPECT_EQ(argAfter(args, "-smp"), "2");
  EXPECT_EQ(argAfter(args, "-m"), "512M");
  EXPECT_EQ(argAfter(args, "-kernel"), "/k/vmlinux");
  EXPECT_NE(std::find(args.begin(), args.end(), "-no-reboot"), args.end());
  EXPECT_NE(std::find(args.begin(), args.end(),
                      "virtserialport,chardev=agent,name=io.nanovisor.agent"),
            args.end());
  EXPECT_EQ(argAfter(args, "-serial"), "chardev:console");
  EXPECT_NE(std::find(args.begin(), args.end(),
                      "file,id=console,append=on,path=/run/nanovisor/sb1/console.log"),
            args.end());
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

TEST(QemuArgs, DiskRateLimit_PutsEachDiskUnderItsOwnThrottleGroup) {
  auto spec = sampleSpec();
  spec.disk_slots = 1;
  spec.disk_limit = {RateLimit{1u << 20, 4u << 20}, RateLimit{100, 0}};
  auto args = qemuArgs(spec, QemuOptions{});
  for (const std::string serial : {"rootfs", "slot0"}) {
    EXPECT_EQ(std::count(args.begin(), args.end(),
                         "throttle-group,id=tg-" + serial +
                             ",x-bps-total=1048576,x-bps-total-max=4194304,x-iops-total=100"),
              1);
    EXPECT_EQ(std::count(args.begin(), args.end(),
                         "driver=throttle,node-name=io-" + serial + ",throttle-group=tg-" +
                             serial + ",file=node-" + serial + ",read-only=on"),
              1);
    // The guest's disk sits on the throttle node; the raw node below it stays node-<serial>
    // (a pod's attachDisk reopens it with new media).
    EXPECT_EQ(std::count(args.begin(), args.end(),
                         "virtio-blk-device,drive=io-" + serial + ",serial=" + serial),
              1);
  }
  // Without a limit: no throttling at all.
  auto plain = qemuArgs(sampleSpec(), QemuOptions{});
  EXPECT_EQ(std::count(plain.begin(), plain.end(), "-object"), 0);
}

TEST(QemuArgs, DiskPathWithComma_IsEscaped) {
  auto spec = sampleSpec();
  spec.disks[0].path = "/img/a,b.erofs";
  auto args = qemuArgs(spec, QemuOptions{});
  EXPECT_NE(argAfter(args, "-blockdev").find("file.filename=/img/a,,b.erofs"), std::string::npos);
}

TEST(QemuArgs, TcgGuest_GetsTheHostTscAsItsClocksource) {
  auto args = qemuArgs(sampleSpec(), QemuOptions{.guest_tsc_khz = 2445404});
  EXPECT_NE(argAfter(args, "-append").find(" tsc_early_khz=2445404 tsc=reliable nanovisor.log=debug"),
            std::string::npos)
      << argAfter(args, "-append");
  // Under KVM the guest has kvm-clock; unknown frequency: the guest calibrates.
  auto kvm = qemuArgs(sampleSpec(), QemuOptions{.accel = Accel::kKvm, .guest_tsc_khz = 2445404});
  EXPECT_EQ(argAfter(kvm, "-append").find("tsc_early_khz"), std::string::npos);
  EXPECT_EQ(argAfter(qemuArgs(sampleSpec(), QemuOptions{}), "-append").find("tsc"),
            std::string::npos);
  auto xml = libvirtDomainXml(sampleSpec(), LibvirtOptions{.guest_tsc_khz = 1000000});
  EXPECT_NE(xml.find("tsc_early_khz=1000000 tsc=reliable"), std::string::npos) << xml;
}

TEST(HostTsc, MeasuredOnceAndPlausible) {
  const uint64_t khz = hostTscKhz();
  if (khz == 0) GTEST_SKIP() << "this host's TSC is not constant and nonstop";
  EXPECT_GT(khz, 100'000u);      // > 100 MHz
  EXPECT_LT(khz, 10'000'000u);   // < 10 GHz
  EXPECT_EQ(hostTscKhz(), khz);  // cached
}

TEST(QemuArgs, PodDiskSlots_AreEmptyRawNodesOverOneSparseFile) {
  auto spec = sampleSpec();
  spec.disk_slots = 2;
  auto args = qemuArgs(spec, QemuOptions{});
  for (const std::string slot : {"slot0", "slot1"}) {
    EXPECT_EQ(std::count(args.begin(), args.end(),
                         "driver=file,node-name=empty-" + slot +
                             ",filename=/run/nanovisor/sb1/empty-slot,read-only=on"),
              1);
    EXPECT_EQ(std::count(args.begin(), args.end(),
                         "driver=raw,node-name=node-" + slot + ",read-only=on,file=empty-" +
                             slot),
              1);
    EXPECT_EQ(std::count(args.begin(), args.end(),
                         "virtio-blk-device,drive=node-" + slot + ",serial=" + slot),
              1);
  }
  // virtio-serial + its port + rng, the rootfs, two slots
  EXPECT_EQ(std::count(args.begin(), args.end(), "-device"), 3 + 1 + 2);
}

TEST(VmSpec, TooManyDiskSlots_IsInvalid) {
  const auto dir = std::filesystem::temp_directory_path();
  VmSpec spec = sampleSpec();
  spec.dir = dir;
  spec.kernel = "/proc/self/exe";
  spec.initramfs = "/proc/self/exe";
  spec.disks.clear();
  spec.disk_slots = kMaxDiskSlots;
  EXPECT_TRUE(spec.validate()) << spec.validate().error().message();
  spec.disk_slots = kMaxDiskSlots + 1;
  auto invalid = spec.validate();
  ASSERT_FALSE(invalid);
  EXPECT_NE(invalid.error().message().find("disk slots"), std::string::npos);
}

TEST(QemuArgs, Sandbox_OnByDefault) {
  auto args = qemuArgs(sampleSpec(), QemuOptions{});
  EXPECT_EQ(argAfter(args, "-sandbox"),
            "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny");
}

TEST(QemuArgs, WritableShare_IsLocalFsdevWithVirtio9pDevice) {
  auto spec = sampleSpec();
  spec.shares = {{.host_dir = "/srv/data", .tag = "volume0", .read_only = false}};
  auto args = qemuArgs(spec, QemuOptions{});
  EXPECT_EQ(argAfter(args, "-fsdev"), "local,id=fs-volume0,path=/srv/data,security_model=none");
  EXPECT_EQ(std::count(args.begin(), args.end(),
                       "virtio-9p-device,fsdev=fs-volume0,mount_tag=volume0"),
            1);
}

TEST(QemuArgs, ReadOnlyShare_IsReadonlyFsdev) {
  auto spec = sampleSpec();
  spec.shares = {{.host_dir = "/srv/data", .tag = "volume0", .read_only = true}};
  auto args = qemuArgs(spec, QemuOptions{});
  EXPECT_EQ(argAfter(args, "-fsdev"),
            "local,id=fs-volume0,path=/srv/data,security_model=none,readonly=on");
  EXPECT_EQ(std::count(args.begin(), args.end(),
                       "virtio-9p-device,fsdev=fs-volume0,mount_tag=volume0"),
            1);
}

TEST(QemuArgs, ShareWithCommaInPath_IsEscaped) {
  auto spec = sampleSpec();
  spec.shares = {{.host_dir = "/srv/a,readonly=off", .tag = "volume0", .read_only = true}};
  // QEMU reads ",," inside a value as one comma, so the path cannot add options.
  EXPECT_EQ(argAfter(qemuArgs(spec, QemuOptions{}), "-fsdev"),
            "local,id=fs-volume0,path=/srv/a,,readonly=off,security_model=none,readonly=on");
}

TEST(LibvirtXml, Shares_AreSquashedFilesystemsReadOnlyWhenAsked) {
  auto spec = sampleSpec();
  spec.shares = {{.host_dir = "/srv/rw", .tag = "volume0", .read_only = false},
                 {.host_dir = "/srv/ro", .tag = "volume1", .read_only = true}};
  auto xml = libvirtDomainXml(spec, LibvirtOptions{});
  EXPECT_NE(xml.find("<filesystem type='mount' accessmode='squash'><source dir='/srv/rw'/>"
                     "<target dir='volume0'/></filesystem>"),
            std::string::npos)
      << xml;
  EXPECT_NE(xml.find("<filesystem type='mount' accessmode='squash'><source dir='/srv/ro'/>"
                     "<target dir='volume1'/><readonly/></filesystem>"),
            std::string::npos)
      << xml;
}

TEST(VmSpec, Validate_RejectsMissingShareDirAndBadTag) {
  const std::string dir = "/tmp/nv-vmspec-" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/vmlinux") << "k";
  std::ofstream(dir + "/initramfs") << "i";
  VmSpec spec = sampleSpec();
  spec.dir = dir;
  spec.kernel = dir + "/vmlinux";
  spec.initramfs = dir + "/initramfs";
  spec.disks.clear();
  spec.shares = {{.host_dir = dir + "/missing", .tag = "volume0"}};
  auto missing = spec.validate();
  spec.shares = {{.host_dir = dir, .tag = "a,b"}};
  auto bad_tag = spec.validate();
  spec.shares = {{.host_dir = dir, .tag = "volume0"}};
  auto good = spec.validate();
  std::filesystem::remove_all(dir);
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message().find("not an existing directory"), std::string::npos);
  ASSERT_FALSE(bad_tag);
  EXPECT_NE(bad_tag.error().message().find("share tag 'a,b'"), std::string::npos);
  EXPECT_TRUE(good) << good.error().message();
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

TEST(LibvirtXml, DiskRateLimit_IsIotune) {
  auto spec = sampleSpec();
  spec.disk_limit = {RateLimit{1u << 20, 4u << 20}, RateLimit{100, 0}};
  auto xml = libvirtDomainXml(spec, LibvirtOptions{});
  EXPECT_NE(xml.find("<readonly/><iotune><total_bytes_sec>1048576</total_bytes_sec>"
                     "<total_bytes_sec_max>4194304</total_bytes_sec_max>"
                     "<total_iops_sec>100</total_iops_sec></iotune></disk>"),
            std::string::npos)
      << xml;
  EXPECT_EQ(libvirtDomainXml(sampleSpec(), LibvirtOptions{}).find("iotune"), std::string::npos);
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
