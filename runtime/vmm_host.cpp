// SPDX-License-Identifier: Apache-2.0
#include "runtime/vmm_host.h"

#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <thread>

#include "common/logging.h"

namespace nv::runtime {

void removeVmDir(const std::filesystem::path& vm_dir) {
  std::error_code ec;
  bool kept = false;
  // Entries the VMM made are never followed: remove_all unlinks symlinks themselves.
  for (const auto& entry : std::filesystem::directory_iterator(vm_dir, ec)) {
    if (entry.path().filename() == "console.log") {
      kept = true;
      continue;
    }
    std::error_code ignored;
    std::filesystem::remove_all(entry.path(), ignored);
  }
  if (!ec && !kept) std::filesystem::remove(vm_dir, ec);
}

Result<VmmHostFiles> VmmHostFiles::create(const std::filesystem::path& sandbox_dir, bool jail) {
  const auto vm_dir = sandbox_dir / "vm";
  const auto jail_dir = sandbox_dir / "jail";
  {
    std::error_code ignored;
    std::filesystem::remove_all(vm_dir, ignored);
    std::filesystem::remove(jail_dir, ignored);
  }
  if (::mkdir(vm_dir.c_str(), 0700) != 0) return failErrno("mkdir " + vm_dir.string());
  VmmHostFiles files(vm_dir, {});
  if (jail) {
    if (::mkdir(jail_dir.c_str(), 0700) != 0) return failErrno("mkdir " + jail_dir.string());
    files.jail_dir_ = jail_dir;
  }
  return files;
}

VmmHostFiles::~VmmHostFiles() {
  if (vm_dir_.empty()) return;
  removeVmDir(vm_dir_);
  std::error_code ignored;
  if (!jail_dir_.empty()) std::filesystem::remove(jail_dir_, ignored);
  // The cgroup record outlives its cgroup only while a cgroup could not be removed.
  const auto record_path = vm_dir_.parent_path() / kVmmCgroupsFile;
  std::ifstream record(record_path);
  if (!record) return;
  for (std::string line; std::getline(record, line);) {
    if (!line.empty() && std::filesystem::exists(line, ignored)) return;
  }
  std::filesystem::remove(record_path, ignored);
}

Result<std::filesystem::path> resolveVmmBinary(const std::string& binary, const std::string& fix) {
  auto missing = [&] { return fail(Errc::kNotFound, binary + " not found; " + fix); };
  if (binary.find('/') != std::string::npos) {
    std::error_code ec;
    auto path = std::filesystem::absolute(binary, ec);
    if (ec || ::access(path.c_str(), X_OK) != 0) return missing();
    return path;
  }
  const char* env = std::getenv("PATH");
  std::string path_list = env != nullptr ? env : "/usr/local/bin:/usr/bin:/bin";
  for (size_t start = 0; start <= path_list.size();) {
    size_t colon = path_list.find(':', start);
    if (colon == std::string::npos) colon = path_list.size();
    const std::filesystem::path candidate =
        std::filesystem::path(path_list.substr(start, colon - start)) / binary;
    if (candidate.is_absolute() && ::access(candidate.c_str(), X_OK) == 0) return candidate;
    start = colon + 1;
  }
  return missing();
}

Result<VmmJail> prepareVmmJail(const VmSpec& spec, const VmmHostFiles& files,
                               const std::filesystem::path& binary,
                               const std::string& binary_name, bool kvm) {
  VmmJail out;
  JailSpec& jail = out.jail;
  jail.root = files.jailDir();
  jail.uid = allocateJailId(spec.id);
  jail.gid = jail.uid;
  jail.kvm = kvm;
  addSystemFiles(jail);
  // The VMM writes only here: its sockets (and QEMU's console log).
  if (::chown(files.vmDir().c_str(), jail.uid, jail.gid) != 0) {
    return failErrno("chown " + files.vmDir().string());
  }
  jail.mounts.push_back({.source = files.vmDir(), .target = "/vm", .writable = true});
  jail.mounts.push_back({.source = spec.kernel, .target = "/boot/vmlinux"});
  jail.mounts.push_back({.source = spec.initramfs, .target = "/boot/initramfs"});
  out.seen = spec;
  out.seen.dir = "/vm";
  out.seen.kernel = "/boot/vmlinux";
  out.seen.initramfs = "/boot/initramfs";
  for (auto& disk : out.seen.disks) {
    // Per-sandbox disks (volumes) belong to the sandbox's uid; shared ones (the image's
    // rootfs) must be world-readable (checked by the jail).
    const auto [inside, rest] = std::mismatch(spec.dir.begin(), spec.dir.end(),
                                              disk.path.begin(), disk.path.end());
    if (inside == spec.dir.end() && ::chown(disk.path.c_str(), jail.uid, jail.gid) != 0) {
      return failErrno("chown " + disk.path.string());
    }
    const std::string target = "/disks/" + disk.serial;
    jail.mounts.push_back({.source = disk.path, .target = target, .writable = !disk.read_only});
    disk.path = target;
  }
  out.binary = binary;
  if (binary.string().rfind("/usr/", 0) != 0) {
    out.binary = "/vmm/" + binary_name;
    jail.mounts.push_back({.source = binary, .target = out.binary.string(), .exec = true});
  }
  return out;
}

Result<SandboxCgroup> createVmmCgroup(const VmSpec& spec, bool tcg, const std::string& component,
                                      const std::string& vmm) {
  char hash[9];
  std::snprintf(hash, sizeof hash, "%08x",
                static_cast<unsigned>(std::hash<std::string>{}(spec.dir.string()) & 0xffffffffu));
  auto made = SandboxCgroup::create("nanovisor-" + spec.id + "-" + hash,
                                    vmmLimits(spec.cpus, spec.memory_mib, tcg));
  if (!made) {
    if (!made.error().is(Errc::kUnsupported)) return tl::unexpected(made.error());
    log::get(component)->warn("{}; {} runs without host cgroup limits", made.error().message(),
                              vmm);
    return SandboxCgroup();
  }
  // Read back only if this process dies without removing it (reapOrphanedVmm).
  std::ofstream record(spec.dir / kVmmCgroupsFile, std::ios::trunc);
  for (const auto& dir : made->dirs()) record << dir.string() << "\n";
  if (!record.flush()) {
    return fail(Errc::kUnavailable, "writing " + (spec.dir / kVmmCgroupsFile).string());
  }
  return std::move(*made);
}

void reapOrphanedVmm(const std::filesystem::path& dir, const std::string& id, pid_t vmm_pid) {
  using std::chrono::milliseconds;
  if (vmm_pid > 0) ::kill(vmm_pid, SIGKILL);
  std::vector<std::filesystem::path> cgroup_dirs;
  {
    std::ifstream record(dir / kVmmCgroupsFile);
    for (std::string line; std::getline(record, line);) {
      if (!line.empty()) cgroup_dirs.emplace_back(line);
    }
  }
  {
    // Whatever is left in the cgroup is this VMM's (a jailed VMM and its threads).
    auto cgroup = SandboxCgroup::adopt(std::move(cgroup_dirs));
    cgroup.killAll();
    // Bounded (the shim's `delete` has 5 s): a VMM stuck in the kernel keeps its cgroup.
    for (int i = 0; i < 100 && !cgroup.pids().empty(); ++i) {
      std::this_thread::sleep_for(milliseconds(20));
    }
    if (!cgroup.pids().empty()) {
      log::get("runtime")->warn(
          "the VMM of {} did not die on SIGKILL within 2 s; its cgroup stays", id);
      (void)cgroup.release();
    }
  }  // removed here, now that its processes are gone
  std::error_code ignored;
  std::filesystem::remove(dir / kVmmCgroupsFile, ignored);
  // The jail's mounts live in the VMM's own mount namespace; the host has the empty mount point.
  const auto jail_dir = dir / "jail";
  if (::umount2(jail_dir.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
    log::get("runtime")->warn("umount {}: {}", jail_dir.string(), std::strerror(errno));
  }
  std::filesystem::remove(jail_dir, ignored);
  removeVmDir(dir / "vm");
}

}  // namespace nv::runtime
