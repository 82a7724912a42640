// SPDX-License-Identifier: Apache-2.0
#include "runtime/oci_spec.h"

#include <cmath>

namespace nv::runtime {
namespace {

// Docker's default capability set: what an unprivileged container process may keep.
const std::vector<std::string> kDefaultCaps = {
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
    "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"};

nlohmann::json userJson(const std::string& user) {
  if (user.empty()) return {{"uid", 0}, {"gid", 0}};
  auto colon = user.find(':');
  std::string name = user.substr(0, colon);
  std::string group = colon == std::string::npos ? "" : user.substr(colon + 1);
  auto numeric = [](const std::string& s) {
    return !s.empty() && s.size() <= 10 && s.find_first_not_of("0123456789") == std::string::npos;
  };
  if (numeric(name) && (group.empty() || numeric(group))) {
    uint32_t uid = static_cast<uint32_t>(std::stoul(name));
    uint32_t gid = group.empty() ? uid : static_cast<uint32_t>(std::stoul(group));
    return {{"uid", uid}, {"gid", gid}};
  }
  // Resolved by the agent from the container's /etc/passwd and /etc/group.
  return {{"uid", 0}, {"gid", 0}, {"username", user}};
}

}  // namespace

std::vector<std::string> mergeEnv(const std::vector<std::string>& base,
                                  const std::vector<std::string>& overrides) {
  std::vector<std::string> out = base;
  for (const auto& kv : overrides) {
    auto key = kv.substr(0, kv.find('='));
    bool replaced = false;
    for (auto& existing : out) {
      if (existing.substr(0, existing.find('=')) == key) {
        existing = kv;
        replaced = true;
      }
    }
    if (!replaced) out.push_back(kv);
  }
  return out;
}

Result<nlohmann::json> buildOciSpec(const ImageProcessDefaults& image,
                                    const ContainerOptions& options) {
  for (const auto& kv : options.env) {
    if (kv.empty() || kv.front() == '=' || kv.find('=') == std::string::npos) {
      return fail(Errc::kInvalidArgument, "environment entry '" + kv + "' is not KEY=VALUE");
    }
  }
  std::vector<std::string> args = image.entrypoint;
  const auto& cmd = options.args.empty() ? image.cmd : options.args;
  args.insert(args.end(), cmd.begin(), cmd.end());
  if (args.empty()) {
    return fail(Errc::kInvalidArgument, "no command given and the image has no default command");
  }
  std::vector<std::string> env = mergeEnv(
      {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, image.env);
  if (options.terminal) env = mergeEnv(env, {"TERM=xterm"});
  env = mergeEnv(env, options.env);
  std::string cwd = !options.cwd.empty() ? options.cwd
                    : !image.working_dir.empty() ? image.working_dir : "/";
  if (cwd.front() != '/') {
    return fail(Errc::kInvalidArgument, "working directory '" + cwd + "' must be absolute");
  }

  nlohmann::json caps = kDefaultCaps;
  nlohmann::json spec = {
      {"ociVersion", "1.0.2"},
      {"process",
       {{"terminal", options.terminal},
        {"user", userJson(options.user.empty() ? image.user : options.user)},
        {"args", args},
        {"env", env},
        {"cwd", cwd},
        {"capabilities",
         {{"bounding", caps}, {"effective", caps}, {"permitted", caps}}},
        {"rlimits", {{{"type", "RLIMIT_NOFILE"}, {"hard", 1048576}, {"soft", 1048576}}}},
        {"noNewPrivileges", false}}},
      {"root", {{"path", "rootfs"}, {"readonly", options.read_only_rootfs}}},
      {"hostname", options.hostname},
      {"mounts",
       {{{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"},
         {"options", {"nosuid", "noexec", "nodev"}}},
        {{"destination", "/dev"}, {"type", "tmpfs"}, {"source", "tmpfs"},
         {"options", {"nosuid", "strictatime", "mode=755", "size=65536k"}}},
        {{"destination", "/dev/pts"}, {"type", "devpts"}, {"source", "devpts"},
         {"options", {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}}},
        {{"destination", "/dev/shm"}, {"type", "tmpfs"}, {"source", "shm"},
         {"options", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}}},
        {{"destination", "/dev/mqueue"}, {"type", "mqueue"}, {"source", "mqueue"},
         {"options", {"nosuid", "noexec", "nodev"}}},
        {{"destination", "/sys"}, {"type", "sysfs"}, {"source", "sysfs"},
         {"options", {"nosuid", "noexec", "nodev", "ro"}}},
        {{"destination", "/tmp"}, {"type", "tmpfs"}, {"source", "tmpfs"},
         {"options", {"nosuid", "nodev", "mode=1777"}}}}},
      {"linux",
       {{"namespaces",
         {{{"type", "pid"}}, {{"type", "ipc"}}, {{"type", "uts"}}, {{"type", "mount"}}}},
        {"maskedPaths",
         {"/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
          "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"}},
        {"readonlyPaths",
         {"/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
          "/proc/sysrq-trigger"}}}},
  };
  nlohmann::json resources = nlohmann::json::object();
  if (options.memory_limit_bytes > 0) {
    resources["memory"] = {{"limit", options.memory_limit_bytes}};
  }
  if (options.cpus > 0) {
    constexpr int64_t kPeriod = 100000;
    resources["cpu"] = {{"period", kPeriod},
                        {"quota", static_cast<int64_t>(std::llround(options.cpus * kPeriod))}};
  }
  if (options.pids_limit > 0) resources["pids"] = {{"limit", options.pids_limit}};
  if (!resources.empty()) spec["linux"]["resources"] = resources;
  return spec;
}

}  // namespace nv::runtime
