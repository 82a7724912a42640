// SPDX-License-Identifier: Apache-2.0
// The subset of the OCI runtime spec (config.json) the agent applies, parsed and validated.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace nv::agent {

// process.user: numeric ids, or a name ("user" or "user:group") resolved from the
// container's /etc/passwd and /etc/group at start.
struct UserSpec {
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<uint32_t> additional_gids;
  std::string username;
};

struct RlimitSpec {
  int resource = 0;  // RLIMIT_*
  uint64_t soft = 0;
  uint64_t hard = 0;
};

// Capability sets as CAP_* numbers.
struct CapabilitiesSpec {
  std::vector<int> bounding;
  std::vector<int> effective;
  std::vector<int> inheritable;
  std::vector<int> permitted;
  std::vector<int> ambient;
};

struct ProcessSpec {
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::string cwd = "/";
  bool terminal = false;
  UserSpec user;
  std::optional<CapabilitiesSpec> capabilities;  // absent: keep the agent's (all)
  std::vector<RlimitSpec> rlimits;
  bool no_new_privileges = false;
  uint16_t console_rows = 0;
  uint16_t console_columns = 0;
};

struct MountSpec {
  std::string destination;
  std::string type;
  std::string source;
  std::vector<std::string> options;
};

struct SeccompArgSpec {
  uint32_t index = 0;
  uint64_t value = 0;
  uint64_t value_two = 0;
  std::string op;  // SCMP_CMP_EQ, ...
};

struct SeccompSyscallSpec {
  std::vector<std::string> names;
  std::string action;
  std::optional<uint32_t> errno_ret;
  std::vector<SeccompArgSpec> args;
};

struct SeccompSpec {
  std::string default_action;
  std::optional<uint32_t> default_errno_ret;
  std::vector<SeccompSyscallSpec> syscalls;
};

// linux.resources, only what maps onto cgroup v2 files we write.
struct ResourcesSpec {
  std::optional<int64_t> memory_limit;  // bytes; -1 = unlimited
  std::optional<int64_t> cpu_quota;     // usec per period; -1 = unlimited
  std::optional<uint64_t> cpu_period;   // usec
  std::optional<uint64_t> cpu_shares;   // v1 shares, mapped to cpu.weight
  std::optional<int64_t> pids_limit;    // -1 = unlimited
};

struct Spec {
  ProcessSpec process;
  bool root_readonly = false;
  std::string hostname;
  std::vector<MountSpec> mounts;
  int namespace_flags = 0;  // CLONE_NEW* of linux.namespaces entries without a path
  // CLONE_NEW* of entries with a path: in a VM the path names a host namespace, so the agent
  // joins the pod sandbox container's namespace of that type instead (see CreateContainer).
  int join_namespace_flags = 0;
  ResourcesSpec resources;
  std::vector<std::string> masked_paths;
  std::vector<std::string> readonly_paths;
  std::map<std::string, std::string> sysctl;
  std::optional<SeccompSpec> seccomp;
};

// Limits on what a request may carry (the host is trusted, but a bug must not exhaust the
// guest): bigger documents are refused.
inline constexpr size_t kMaxSpecBytes = 1024 * 1024;

// Parses config.json. Errors name the offending field ("process.args: must be a non-empty
// array of strings"). Only Linux specs are accepted; user namespaces are refused.
[[nodiscard]] Result<Spec> parseSpec(std::string_view json);

// Parses an OCI "process" object (ExecProcess).
[[nodiscard]] Result<ProcessSpec> parseProcess(std::string_view json);

// CAP_* number for "CAP_SYS_ADMIN" (the prefix is optional), or an error.
[[nodiscard]] Result<int> capabilityFromName(std::string_view name);

// RLIMIT_* number for "RLIMIT_NOFILE", or an error.
[[nodiscard]] Result<int> rlimitFromName(std::string_view name);

// Mount flags and the filesystem-specific data string for OCI mount options.
struct MountFlags {
  unsigned long flags = 0;        // MS_*
  unsigned long propagation = 0;  // MS_PRIVATE, MS_SLAVE, MS_SHARED (| MS_REC)
  std::string data;
  bool bind = false;
  bool recursive = false;
};
[[nodiscard]] MountFlags parseMountOptions(const std::vector<std::string>& options);

// True for an absolute path without "." or ".." components (destination inside a rootfs).
[[nodiscard]] bool isCleanAbsolutePath(std::string_view path);

}  // namespace nv::agent
