// SPDX-License-Identifier: Apache-2.0
// Spawning children: clone (with namespace flags) and re-exec the agent as
// `nanovisor-agent --nv-child`, which sets up the container or exec process (child.h).
#pragma once

#include <sys/types.h>

#include <array>
#include <string>

#include "agent/launch_config.h"
#include "agent/reaper.h"
#include "common/result.h"
#include "common/unique_fd.h"

namespace nv::agent {

struct Spawned {
  pid_t pid = -1;  // the cloned child (for kExec: the helper that clones the workload)
  UniqueFd sync;   // agent end of the sync socket
};

// Clones a child with `clone_flags` (CLONE_NEW*), stdio from `stdio` (fds the child gets as
// 0, 1, 2), and the re-exec'd agent binary `self_exe`. `on_exit` is registered with the
// reaper before the child can exit. `cgroup_procs`, when not empty, is the cgroup.procs file
// of the cgroup the child runs in: it is cloned into that cgroup (clone3 CLONE_INTO_CGROUP)
// or, where that fails, its pid is written there before it runs anything. Then the config is
// sent.
[[nodiscard]] Result<Spawned> spawnChild(const std::string& self_exe, const LaunchConfig& config,
                                         int clone_flags, std::array<int, 3> stdio,
                                         const std::string& cgroup_procs, Reaper& reaper,
                                         Reaper::ExitCallback on_exit);

// Reads one newline-terminated record from the sync socket ("" at EOF), waiting at most
// `timeout_ms`. A file descriptor passed along with it (SCM_RIGHTS) goes to `received`.
[[nodiscard]] Result<std::string> readSyncRecord(int fd, int timeout_ms,
                                                 UniqueFd* received = nullptr);

}  // namespace nv::agent
