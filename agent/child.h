// SPDX-License-Identifier: Apache-2.0
// The child side of spawning: `nanovisor-agent --nv-child` sets up a container (mounts,
// pivot_root, hostname) or joins a running one (setns, cgroup), applies the OCI process
// (rlimits, user, capabilities, no_new_privs, seccomp, cwd, env) and execs the workload.
// It runs single-threaded, right after the agent cloned it, so it may allocate freely.
#pragma once

#include <string>
#include <vector>

#include "agent/oci_spec.h"
#include "common/result.h"

namespace nv::agent {

// Entry point of `--nv-child`: reads the LaunchConfig from kConfigFd and talks to the agent
// over kSyncFd. Returns only on failure (the exit status for the child).
int runChild();

// Joins `root` and `path` (absolute, clean) following symlinks inside `root` only, so a
// symlink in an image cannot point a mount outside the rootfs. Missing components are kept
// as they are. Exposed for tests.
[[nodiscard]] Result<std::string> secureJoin(const std::string& root, const std::string& path);

// Finds `file` in the colon-separated `path_env` like execvp (files containing '/' are
// returned as they are). Exposed for tests.
[[nodiscard]] Result<std::string> lookupExecutable(const std::string& file,
                                                   const std::string& path_env);

}  // namespace nv::agent
