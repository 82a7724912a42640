// SPDX-License-Identifier: Apache-2.0
// The VMM jail (after Firecracker's jailer, docs/security.md): a VMM process started in new
// mount, pid, ipc, uts, net and cgroup namespaces, pivot_root'ed into a per-sandbox tmpfs that
// holds only what the VM needs (bind mounts of its kernel, initramfs, disks and sockets dir,
// /usr and the loader cache, /dev/null, /dev/urandom and /dev/kvm), as an unprivileged
// uid/gid of its own with every capability dropped, no_new_privs and rlimits set.
//
// The jail's mounts live only in its mount namespace: they vanish with the process, and the
// host sees nothing but the empty mount-point directory, which the owner removes.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/subprocess.h"

namespace nv::runtime {

// Host uids/gids for jailed VMMs: kJailIdBase + [0, kJailIdCount). The range 0x70000000..
// 0x7000ffff is above every range distributions and systemd allocate (regular users end at
// 60000, systemd-nspawn container ranges at 0x6fffffff) and below 2^31.
inline constexpr uint32_t kJailIdBase = 0x70000000;
inline constexpr uint32_t kJailIdCount = 0x10000;

// A host file or directory bind-mounted into the jail.
struct JailMount {
  std::filesystem::path source;  // host path (symlinks followed)
  std::string target;            // absolute path inside the jail
  bool writable = false;         // read-only unless set
  bool exec = false;             // noexec unless set
  // An ID-mapped bind (Linux 5.12+; 6.3+ on tmpfs): the source's owner uid/gid and the jail's
  // uid/gid are one, so the VMM acts as that owner, and what it creates lands owned by the
  // owner. Files of other owners show as 65534 and are only as reachable as their "other"
  // mode bits allow. Always nosuid, nodev, noexec. A filesystem that cannot do it is an error
  // naming the fix (jail = false), never a silent fallback.
  bool map_owner = false;
};

struct JailSpec {
  std::filesystem::path root;    // existing empty directory: the jail's tmpfs mount point
  uint32_t uid = 0;              // the VMM's uid and gid (kJailIdBase + n)
  uint32_t gid = 0;
  std::vector<JailMount> mounts;
  std::vector<std::pair<std::string, std::string>> symlinks;  // {path in jail, link target}
  bool kvm = false;              // /dev/kvm, owned by uid, mode 0600
  // A procfs of the jail's own pid namespace at /proc, read-only, `subset=pid`: nothing but
  // the VMM's own /proc/<pid> and /proc/self (QEMU's 9p server changes file modes through
  // /proc/self/fd/N). No /proc/sys, /proc/kcore and the like.
  bool proc_self = false;
  // cgroup.procs files the VMM joins before anything else (its threads inherit them).
  std::vector<std::filesystem::path> cgroup_procs;
  uint64_t max_open_files = 4096;       // RLIMIT_NOFILE
  uint64_t max_locked_bytes = 64 << 10;  // RLIMIT_MEMLOCK
  uint64_t max_processes = 512;         // RLIMIT_NPROC (threads of this uid; uid is per VM)
};

// Adds what a dynamically linked program from /usr needs: /usr (read-only, exec), /lib,
// /lib64 and /bin (the same symlinks as on the host, or read-only binds where they are real
// directories) and /etc/ld.so.cache.
void addSystemFiles(JailSpec& jail);

// A uid for sandbox `id` in the jail range: a hash of the id, moved on while a process of
// that uid runs (two live VMMs never share a uid).
[[nodiscard]] uint32_t allocateJailId(const std::string& id);

// Checks the spec (root, paths readable by the jail's uid) without starting anything.
[[nodiscard]] Result<void> checkJail(const JailSpec& jail);

// Starts options.argv inside the jail. argv[0] must be an absolute path under a jail mount
// (e.g. /usr/bin/qemu-system-x86_64); every other path the program uses must be a jail path.
// The environment is empty but PATH; stdio, new_session and die_with_parent are honoured
// (extra_env is ignored). The process is pid 1 of its pid namespace; killing it from the host
// ends the jail.
[[nodiscard]] Result<Subprocess> spawnJailed(const JailSpec& jail, const SpawnOptions& options);

}  // namespace nv::runtime
