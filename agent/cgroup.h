// SPDX-License-Identifier: Apache-2.0
// Per-container cgroup v2 directories: limits from linux.resources, stats, OOM counters.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "agent/oci_spec.h"
#include "common/result.h"

namespace nv::agent {

struct CgroupStats {
  uint64_t cpu_usage_usec = 0;
  uint64_t cpu_user_usec = 0;
  uint64_t cpu_system_usec = 0;
  uint64_t memory_current = 0;
  uint64_t memory_max = 0;  // 0 = unlimited
  uint64_t memory_peak = 0;
  uint64_t oom_kills = 0;
  uint64_t pids_current = 0;
  uint64_t pids_max = 0;    // 0 = unlimited
  uint64_t io_read_bytes = 0;
  uint64_t io_write_bytes = 0;
};

// Tasks the agent keeps for itself (its threads, exec'd processes' setup) out of the guest's
// kernel.threads-max; all containers share the rest through <root>/nanovisor's pids.max.
inline constexpr int64_t kAgentTaskReserve = 128;
// threads-max minus kAgentTaskReserve (at least 64).
[[nodiscard]] int64_t containerTaskBudget();

// The cgroup v2 hierarchy the agent manages: <root>/nanovisor/<container id>.
class Cgroups {
 public:
  // `root` is a cgroup2 mount (/sys/fs/cgroup). When it is not one, available() is false
  // and containers run without a cgroup (host mode on cgroup v1 machines).
  explicit Cgroups(std::string root);

  [[nodiscard]] bool available() const { return available_; }
  [[nodiscard]] const std::string& root() const { return root_; }

  // Enables cpu, memory, pids and io for children of `dir` (those the kernel offers).
  [[nodiscard]] static Result<void> enableControllers(const std::string& dir);

  // Creates the container's cgroup and writes the limits; returns its directory.
  [[nodiscard]] Result<std::string> create(const std::string& id, const ResourcesSpec& resources);

  // Kills what is left in it and removes the directory.
  void remove(const std::string& dir);

  // Sends SIGKILL to every process in it (cgroup.kill, or one by one).
  static void killAll(const std::string& dir);

  [[nodiscard]] static CgroupStats stats(const std::string& dir);
  [[nodiscard]] static uint64_t oomKills(const std::string& dir);
  [[nodiscard]] static std::vector<pid_t> pids(const std::string& dir);

 private:
  std::string root_;
  bool available_ = false;
};

// cpu.max for an OCI quota/period ("max 100000" when unlimited).
[[nodiscard]] std::string cpuMaxValue(std::optional<int64_t> quota, std::optional<uint64_t> period);

// cpu.weight (1..10000) for v1 cpu shares (2..262144), as runc/crun convert it.
[[nodiscard]] uint64_t cpuWeightFromShares(uint64_t shares);

// The value of `key` in a flat-keyed file ("oom_kill 3\n...") or 0.
[[nodiscard]] uint64_t flatKeyedValue(const std::string& text, const std::string& key);

}  // namespace nv::agent
