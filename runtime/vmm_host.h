// SPDX-License-Identifier: Apache-2.0
// What the drivers that start their VMM as a process of their own (qemu, builtin) set up on the
// host around it, shared by both: <dir>/vm (the only directory the VMM writes, owned by the
// jail's uid when jailed), <dir>/jail (the jail's mount point, empty on the host), the VM as
// the jailed VMM sees it (runtime/jail.h), the per-sandbox host cgroup (runtime/cgroup.h)
// with its record file, and the cleanup after a VMM whose owner died.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <utility>

#include "common/result.h"
#include "runtime/cgroup.h"
#include "runtime/jail.h"
#include "runtime/vm.h"

namespace nv::runtime {

// The file in the sandbox dir that lists the VMM's host cgroup directories, one per line
// (written at start, so that a VMM whose owner died can still be cleaned up).
inline constexpr const char* kVmmCgroupsFile = "vmm-cgroups";

// Removes what a VMM left in its VM dir but the console log (kept for `inspect` and
// debugging until the sandbox is removed); the directory too when nothing is left in it.
void removeVmDir(const std::filesystem::path& vm_dir);

// <dir>/vm and, when jailed, <dir>/jail of one VMM process: created fresh (mode 0700) by
// create(), removed (removeVmDir; the empty mount point) on destruction, with <dir>/vmm-cgroups
// once none of the cgroups it lists is left. Owned by the Vm and destroyed after its process
// is reaped and its cgroup removed.
class VmmHostFiles {
 public:
  [[nodiscard]] static Result<VmmHostFiles> create(const std::filesystem::path& sandbox_dir,
                                                   bool jail);
  VmmHostFiles() = default;
  VmmHostFiles(VmmHostFiles&& other) noexcept
      : vm_dir_(std::exchange(other.vm_dir_, {})), jail_dir_(std::exchange(other.jail_dir_, {})) {}
  VmmHostFiles& operator=(VmmHostFiles&&) = delete;
  VmmHostFiles(const VmmHostFiles&) = delete;
  VmmHostFiles& operator=(const VmmHostFiles&) = delete;
  ~VmmHostFiles();

  [[nodiscard]] const std::filesystem::path& vmDir() const { return vm_dir_; }
  // Empty when not jailed.
  [[nodiscard]] const std::filesystem::path& jailDir() const { return jail_dir_; }

 private:
  VmmHostFiles(std::filesystem::path vm, std::filesystem::path jail)
      : vm_dir_(std::move(vm)), jail_dir_(std::move(jail)) {}
  std::filesystem::path vm_dir_;
  std::filesystem::path jail_dir_;
};

// `binary` as an absolute path (PATH searched when it has no '/'); kNotFound saying
// "<binary> not found; <fix>" when it is missing or not executable.
[[nodiscard]] Result<std::filesystem::path> resolveVmmBinary(const std::string& binary,
                                                             const std::string& fix);

// The jail of a sandbox's VMM and the VM as the VMM sees it from inside.
struct VmmJail {
  JailSpec jail;
  VmSpec seen;                  // dir /vm, kernel /boot/vmlinux, disks /disks/<serial>
  std::filesystem::path binary; // the program's path inside the jail
};

// The jail every driver's VMM gets: a per-sandbox uid/gid (allocateJailId), the host's /usr
// and loader files (addSystemFiles), files.vmDir() at /vm read-write (chowned to the jail's
// uid), spec.kernel at /boot/vmlinux and spec.initramfs at /boot/initramfs read-only, each
// disk at /disks/<serial> (read-only unless writable; disks inside spec.dir are chowned to the
// jail's uid, shared ones must be world-readable), `binary` (absolute) bound alone at
// /vmm/<binary_name> when it is outside /usr, and /dev/kvm when `kvm`. Volumes (spec.shares)
// are the caller's: `seen.shares` still holds host paths.
[[nodiscard]] Result<VmmJail> prepareVmmJail(const VmSpec& spec, const VmmHostFiles& files,
                                             const std::filesystem::path& binary,
                                             const std::string& binary_name, bool kvm);

// The sandbox's VMM cgroup, `nanovisor-<id>-<hash of spec.dir>` (two state roots may use the
// same id) sized by vmmLimits(spec.cpus, spec.memory_mib, tcg), listed in <dir>/vmm-cgroups
// for reapOrphanedVmm. Where the host has no usable hierarchy: a warning on logger
// `component` naming `vmm` and an empty SandboxCgroup (the VMM runs without limits).
[[nodiscard]] Result<SandboxCgroup> createVmmCgroup(const VmSpec& spec, bool tcg,
                                                    const std::string& component,
                                                    const std::string& vmm);

// Cleans up after a VMM whose owner died without stopping it (a crashed shim or supervisor):
// SIGKILLs `vmm_pid` when it is > 0 (the caller has checked that the pid still is that VMM)
// and whatever is left in the host cgroup listed in <dir>/vmm-cgroups, then removes that
// cgroup, the record, the jail's mount point and the VM dir (removeVmDir). Idempotent.
void reapOrphanedVmm(const std::filesystem::path& dir, const std::string& id, pid_t vmm_pid);

}  // namespace nv::runtime
