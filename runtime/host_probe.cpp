// SPDX-License-Identifier: Apache-2.0
#include "runtime/host_probe.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <x86intrin.h>

#include <ctime>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/subprocess.h"
#include "common/unique_fd.h"
#include "runtime/cgroup.h"
#include "runtime/libvirt_driver.h"

namespace nv::runtime {
namespace {

using std::chrono::milliseconds;

std::string bootId() {
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  std::string id;
  std::getline(in, id);
  return id;
}

std::string firstLine(const std::string& s) { return s.substr(0, s.find('\n')); }

HostCapabilities probeUncached(const RuntimeConfig& config) {
  HostCapabilities caps;
  caps.tsc_khz = hostTscKhz();
  UniqueFd kvm(::open("/dev/kvm", O_RDWR | O_CLOEXEC));
  if (!kvm) {
    caps.kvm_detail = std::string("/dev/kvm: ") + std::strerror(errno);
    return caps;
  }
  caps.kvm_usable = true;
  if (!std::filesystem::exists(config.vmm_binary)) {
    caps.kvm_detail = "nanovisor-vmm not installed; cannot test unmodified guests";
    return caps;
  }
  auto probe = runCommand({config.vmm_binary.string(), "probe"}, milliseconds(10000));
  if (!probe) {
    caps.kvm_detail = "probe failed: " + probe.error().message();
  } else {
    caps.kvm_unmodified_guests = probe->exit_code == 0;
    caps.kvm_detail = firstLine(probe->output);
  }
  return caps;
}

}  // namespace

HostCapabilities probeHost(const RuntimeConfig& config) {
  auto cache = config.state_dir / "host-probe.json";
  const std::string boot = bootId();
  {
    std::ifstream in(cache);
    auto j = nlohmann::json::parse(in, nullptr, false);
    if (!j.is_discarded() && j.is_object() && j.value("boot_id", "") == boot &&
        j.contains("tsc_khz")) {
      return {.kvm_usable = j.value("kvm_usable", false),
              .kvm_unmodified_guests = j.value("kvm_unmodified_guests", false),
              .kvm_detail = j.value("kvm_detail", ""),
              .tsc_khz = j.value("tsc_khz", uint64_t{0})};
    }
  }
  HostCapabilities caps = probeUncached(config);
  std::error_code ec;
  std::filesystem::create_directories(config.state_dir, ec);
  std::ofstream out(cache);
  out << nlohmann::json{{"boot_id", boot},
                        {"kvm_usable", caps.kvm_usable},
                        {"kvm_unmodified_guests", caps.kvm_unmodified_guests},
                        {"kvm_detail", caps.kvm_detail},
                        {"tsc_khz", caps.tsc_khz}}
             .dump();
  return caps;
}

std::string resolveDriver(const RuntimeConfig& config, const HostCapabilities& caps) {
  if (config.hypervisor != "auto") return config.hypervisor;
  if (caps.kvm_unmodified_guests && std::filesystem::exists(config.vmm_binary)) return "builtin";
  return "qemu";
}

std::vector<CheckItem> hostChecks(const RuntimeConfig& config) {
  std::vector<CheckItem> items;
  HostCapabilities caps = probeHost(config);
  items.push_back({"KVM device /dev/kvm usable", caps.kvm_usable, false,
                   caps.kvm_usable ? "yes" : caps.kvm_detail,
                   "load kvm_intel/kvm_amd (or run on a host with nested virtualization); "
                   "qemu falls back to TCG"});
  items.push_back({"KVM runs unmodified guests (builtin driver)", caps.kvm_unmodified_guests,
                   false, caps.kvm_detail,
                   "this host's KVM cannot deliver guest exceptions (e.g. PVM); the qemu driver "
                   "with TCG is used instead"});
  HostCapabilities picked = caps;
  items.push_back({"driver for hypervisor=" + config.hypervisor, true, false,
                   resolveDriver(config, picked), ""});

  auto qemu = runCommand({config.qemu_binary, "--version"}, milliseconds(5000));
  bool qemu_ok = qemu && qemu->exit_code == 0;
  items.push_back({"QEMU (" + config.qemu_binary + ")", qemu_ok, true,
                   qemu_ok ? firstLine(qemu->output) : "not found",
                   "make deps (Debian package qemu-system-x86)"});

  auto libvirt = libvirtReachable(config.libvirt_uri);
  items.push_back({"libvirt at " + config.libvirt_uri, libvirt.has_value(),
                   config.hypervisor == "libvirt", libvirt ? "reachable" : libvirt.error().message(),
                   "virtlogd -d && libvirtd -d (or systemctl start libvirtd)"});
  struct stat st {};
  bool kvm_group = ::stat("/dev/kvm", &st) == 0 && (st.st_mode & 0060) == 0060;
  items.push_back({"/dev/kvm group-accessible (libvirt's QEMU user)", kvm_group, false,
                   kvm_group ? "yes" : "mode is root-only",
                   "chgrp kvm /dev/kvm && chmod 0660 /dev/kvm (udev does this on most hosts)"});

  const uint64_t tsc_khz = caps.tsc_khz;  // measured with the probe, cached per boot
  items.push_back({"guest clock under TCG (host TSC constant and nonstop)", tsc_khz != 0, false,
                   tsc_khz != 0 ? tcgClockCmdline(tsc_khz) : "no: TCG guests tick at HZ when idle",
                   "a host whose CPU flags include constant_tsc and nonstop_tsc"});

  bool kernel_ok = std::filesystem::is_regular_file(config.kernel);
  items.push_back({"guest kernel", kernel_ok, true, config.kernel.string(),
                   "make kernel (or set kernel in /etc/nanovisor/config.toml)"});
  bool initramfs_ok = std::filesystem::is_regular_file(config.initramfs);
  items.push_back({"guest initramfs (agent)", initramfs_ok, true, config.initramfs.string(),
                   "make initramfs (or set initramfs in /etc/nanovisor/config.toml)"});

  const CgroupVersion version = detectCgroupVersion();
  items.push_back({"VMM host cgroup (memory, pids, cpu; docs/security.md)",
                   !config.cgroups || version != CgroupVersion::kNone, false,
                   !config.cgroups                     ? "off (cgroups = false)"
                   : version == CgroupVersion::kV2     ? "cgroup v2"
                   : version == CgroupVersion::kV1     ? "cgroup v1 (per-controller hierarchies)"
                                                       : "no usable hierarchy: VMM runs unlimited",
                   "mount cgroup v2 on /sys/fs/cgroup, or v1 with memory, pids and cpu"});
  items.push_back({"VMM jail (namespaces, pivot_root, own uid; docs/security.md)",
                   !config.jail || ::geteuid() == 0, false,
                   !config.jail ? "off (jail = false)" : ::geteuid() == 0 ? "on" : "needs root",
                   "run nanovisor as root, or set jail = false in the config"});
  auto erofs = runCommand({"mkfs.erofs", "--help"}, milliseconds(5000));
  bool erofs_ok = erofs.has_value();
  items.push_back({"mkfs.erofs (rootfs images)", erofs_ok, true,
                   erofs_ok ? "found" : "not found", "make deps (Debian package erofs-utils)"});
  auto ext4 = runCommand({"mkfs.ext4", "-V"}, milliseconds(5000));
  items.push_back({"mkfs.ext4 (scratch disks)", ext4.has_value(), true,
                   ext4 ? "found" : "not found", "make deps (Debian package e2fsprogs)"});
  return items;
}

uint64_t hostTscKhz() {
  static const uint64_t khz = []() -> uint64_t {
    std::ifstream cpuinfo("/proc/cpuinfo");
    std::string line;
    while (std::getline(cpuinfo, line) && line.rfind("flags", 0) != 0) {
    }
    std::istringstream flags(line);
    bool constant = false, nonstop = false;
    for (std::string flag; flags >> flag;) {
      constant = constant || flag == "constant_tsc";
      nonstop = nonstop || flag == "nonstop_tsc";
    }
    if (!constant || !nonstop) return 0;
    auto now_ns = [] {
      timespec ts{};
      ::clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
      return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000 + static_cast<uint64_t>(ts.tv_nsec);
    };
    const uint64_t ns0 = now_ns();
    const uint64_t tsc0 = __rdtsc();
    uint64_t ns1 = ns0;
    while (ns1 - ns0 < 5'000'000) ns1 = now_ns();
    const uint64_t tsc1 = __rdtsc();
    return (tsc1 - tsc0) * 1'000'000 / (ns1 - ns0);  // ticks per ms
  }();
  return khz;
}

std::string tcgClockCmdline(uint64_t tsc_khz) {
  return tsc_khz == 0 ? std::string()
                      : "tsc_early_khz=" + std::to_string(tsc_khz) + " tsc=reliable";
}

}  // namespace nv::runtime
