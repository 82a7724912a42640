// SPDX-License-Identifier: Apache-2.0
// LaunchConfig: what the agent hands a freshly cloned child (over fd 3) so that the child,
// re-executed as `nanovisor-agent --nv-child`, can set up a container or exec process.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace nv::agent {

// A bind mount the agent prepared (a volume disk it mounted) for the container.
struct VolumeBind {
  std::string source;       // path in the agent's mount namespace
  std::string destination;  // absolute path in the container
  bool readonly = false;
};

struct LaunchConfig {
  enum class Kind { kContainer, kExec };
  Kind kind = Kind::kContainer;
  std::string spec_json;    // kContainer: config.json; kExec: an OCI process object
  std::string rootfs;       // kContainer: the prepared rootfs directory
  std::vector<VolumeBind> volumes;
  int init_pid = 0;         // kExec: the container's init pid (agent's pid namespace);
                            // kContainer with join_flags: the pod sandbox's init pid
  int join_flags = 0;       // kContainer: CLONE_NEW* namespaces to join from init_pid's
  int clone_flags = 0;      // kContainer with join_flags: CLONE_NEW* of the container itself
  std::string cgroup_dir;   // kExec: cgroup to join; empty when cgroups are off
  bool tty = false;         // stdio is a terminal: make it the controlling tty
  std::string container_spec_json;  // kExec: the container's config.json (for seccomp)
};

[[nodiscard]] std::string serializeLaunchConfig(const LaunchConfig& config);
[[nodiscard]] Result<LaunchConfig> parseLaunchConfig(std::string_view json);

// File descriptors a child finds at start.
inline constexpr int kConfigFd = 3;  // LaunchConfig JSON, read to EOF
inline constexpr int kSyncFd = 4;    // socket to the agent (see spawn.h for the protocol)

}  // namespace nv::agent
