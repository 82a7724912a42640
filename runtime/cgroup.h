// SPDX-License-Identifier: Apache-2.0
// The host cgroup of one sandbox's VMM (docs/security.md "Denial of service"): QEMU and all
// its threads in `nanovisor-<id>-<hash>` with memory, pids and cpu limits sized from the sandbox,
// removed when the sandbox ends.
//
// cgroup v2 (unified): /sys/fs/cgroup/nanovisor-<id>-<hash>, the memory, pids and cpu controllers
// enabled in the root's subtree_control. cgroup v1 (and hybrid hosts, whose controllers are
// all on v1): <controller mount>/<the caller's cgroup>/nanovisor-<id> in each of the memory,
// pids and cpu hierarchies (.../nanovisor-<id>-<hash>), so limits set on the caller still bound the VMM.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"

namespace nv::runtime {

enum class CgroupVersion { kNone, kV1, kV2 };

// What /sys/fs/cgroup is: v2 when it is a cgroup2 mount; v1 when the memory, pids and cpu
// controllers are mounted as v1 hierarchies (hybrid hosts count as v1); else none.
[[nodiscard]] CgroupVersion detectCgroupVersion();

// Memory the VMM needs beyond the guest's RAM: QEMU's own heap, device state, I/O buffers and
// mapped libraries (measured ~60 MiB for a busy 256 MiB TCG guest), with headroom.
inline constexpr uint64_t kVmmOverheadMiB = 128;
// TCG's translation cache, fixed with -accel tcg,tb-size= so that it is bounded too.
inline constexpr uint64_t kTcgCacheMiB = 128;
// Tasks (threads) of one VMM: main, RCU, vCPUs, QEMU's I/O worker pool (up to 64), with room.
inline constexpr uint64_t kVmmMaxTasks = 512;

struct CgroupLimits {
  uint64_t memory_bytes = 0;      // 0: no limit
  uint64_t pids = 0;              // 0: no limit
  uint64_t cpu_quota_us = 0;      // per cpu_period_us; 0: no limit
  uint64_t cpu_period_us = 100000;
};

// The limits for a VMM of `cpus` vCPUs and `memory_mib` guest RAM (tcg: plus its cache).
[[nodiscard]] CgroupLimits vmmLimits(uint32_t cpus, uint64_t memory_mib, bool tcg);

class SandboxCgroup {
 public:
  // Creates cgroup `name` (nanovisor-<id>-<hash of the sandbox dir>) with `limits` (a stale
  // empty one of that name, left by a crash, is replaced). Errc::kUnsupported when the host
  // has no usable cgroup hierarchy.
  [[nodiscard]] static Result<SandboxCgroup> create(const std::string& name,
                                                    const CgroupLimits& limits);
  // The cgroup at `dirs` (what dirs() listed), left by an owner that died: killAll() ends
  // what runs in it and destruction removes it, as for one this process created.
  [[nodiscard]] static SandboxCgroup adopt(std::vector<std::filesystem::path> dirs);
  SandboxCgroup() = default;
  SandboxCgroup(SandboxCgroup&& other) noexcept : dirs_(std::exchange(other.dirs_, {})) {}
  SandboxCgroup& operator=(SandboxCgroup&& other) noexcept;
  SandboxCgroup(const SandboxCgroup&) = delete;
  SandboxCgroup& operator=(const SandboxCgroup&) = delete;
  // Removes the cgroup directories (retrying briefly while the last tasks exit).
  ~SandboxCgroup();

  // One directory (v2) or one per controller (v1).
  [[nodiscard]] const std::vector<std::filesystem::path>& dirs() const { return dirs_; }
  // The cgroup.procs files a process writes "0" to (or its pid) to join.
  [[nodiscard]] std::vector<std::filesystem::path> procsFiles() const;
  // Moves process `pid` (all its threads) in.
  [[nodiscard]] Result<void> join(pid_t pid) const;
  // The processes in it (cgroup.procs of each directory).
  [[nodiscard]] std::vector<pid_t> pids() const;
  // SIGKILLs every process in it; returns how many it signalled.
  size_t killAll() const;
  // Stops owning the directories: they are left in place.
  std::vector<std::filesystem::path> release() noexcept { return std::exchange(dirs_, {}); }

 private:
  void remove() noexcept;
  std::vector<std::filesystem::path> dirs_;
};

}  // namespace nv::runtime
