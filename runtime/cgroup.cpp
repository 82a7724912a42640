// SPDX-License-Identifier: Apache-2.0
#include "runtime/cgroup.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "common/syscall.h"
#include "common/unique_fd.h"

namespace nv::runtime {
namespace {

constexpr const char* kRoot = "/sys/fs/cgroup";
constexpr const char* kControllers[] = {"memory", "pids", "cpu"};

Result<void> writeFile(const std::filesystem::path& path, const std::string& value) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return failErrno("open " + path.string());
  const ssize_t n = retryOnEintr([&] { return ::write(fd.get(), value.data(), value.size()); });
  if (n != static_cast<ssize_t>(value.size())) {
    return failErrno("write '" + value + "' to " + path.string());
  }
  return {};
}

std::string readFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// v1: controller -> its mount point (from /proc/self/mounts).
std::map<std::string, std::filesystem::path> v1Mounts() {
  std::map<std::string, std::filesystem::path> out;
  std::istringstream mounts(readFile("/proc/self/mounts"));
  for (std::string line; std::getline(mounts, line);) {
    std::istringstream fields(line);
    std::string source, target, type, options;
    fields >> source >> target >> type >> options;
    if (type != "cgroup") continue;
    std::istringstream opts(options);
    for (std::string opt; std::getline(opts, opt, ',');) {
      for (const char* c : kControllers) {
        if (opt == c) out.emplace(c, target);
      }
    }
  }
  return out;
}

// v1: controller -> the caller's cgroup path in that hierarchy (from /proc/self/cgroup).
std::map<std::string, std::string> v1Paths() {
  std::map<std::string, std::string> out;
  std::istringstream lines(readFile("/proc/self/cgroup"));
  for (std::string line; std::getline(lines, line);) {
    const auto first = line.find(':');
    const auto second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) continue;
    std::istringstream names(line.substr(first + 1, second - first - 1));
    for (std::string name; std::getline(names, name, ',');) {
      out[name] = line.substr(second + 1);
    }
  }
  return out;
}

// mkdir, replacing an empty stale directory of the same name.
Result<void> makeCgroupDir(const std::filesystem::path& dir) {
  if (::mkdir(dir.c_str(), 0755) == 0) return {};
  if (errno == EEXIST && ::rmdir(dir.c_str()) == 0 && ::mkdir(dir.c_str(), 0755) == 0) return {};
  return failErrno("creating cgroup " + dir.string());
}

}  // namespace

CgroupVersion detectCgroupVersion() {
  struct statfs fs {};
  if (::statfs(kRoot, &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC) return CgroupVersion::kV2;
  const auto mounts = v1Mounts();
  for (const char* c : kControllers) {
    if (!mounts.contains(c)) return CgroupVersion::kNone;
  }
  return CgroupVersion::kV1;
}

CgroupLimits vmmLimits(uint32_t cpus, uint64_t memory_mib, bool tcg) {
  CgroupLimits limits;
  limits.memory_bytes = (memory_mib + kVmmOverheadMiB + (tcg ? kTcgCacheMiB : 0)) << 20;
  limits.pids = kVmmMaxTasks;
  limits.cpu_quota_us = uint64_t{cpus} * limits.cpu_period_us;
  return limits;
}

Result<SandboxCgroup> SandboxCgroup::create(const std::string& name, const CgroupLimits& limits) {
  SandboxCgroup cg;
  switch (detectCgroupVersion()) {
    case CgroupVersion::kNone:
      return fail(Errc::kUnsupported,
                  "no usable cgroup hierarchy at /sys/fs/cgroup (need cgroup v2, or v1 with the "
                  "memory, pids and cpu controllers); set cgroups = false in the config");
    case CgroupVersion::kV2: {
      const std::filesystem::path root = kRoot;
      const std::string enabled = readFile(root / "cgroup.subtree_control");
      for (const char* c : kControllers) {
        if (enabled.find(c) == std::string::npos) {
          NV_TRY(writeFile(root / "cgroup.subtree_control", std::string("+") + c));
        }
      }
      const auto dir = root / name;
      NV_TRY(makeCgroupDir(dir));
      cg.dirs_.push_back(dir);
      if (limits.memory_bytes > 0) {
        NV_TRY(writeFile(dir / "memory.max", std::to_string(limits.memory_bytes)));
        if (std::filesystem::exists(dir / "memory.swap.max")) {
          NV_TRY(writeFile(dir / "memory.swap.max", "0"));
        }
      }
      if (limits.pids > 0) NV_TRY(writeFile(dir / "pids.max", std::to_string(limits.pids)));
      if (limits.cpu_quota_us > 0) {
        NV_TRY(writeFile(dir / "cpu.max", std::to_string(limits.cpu_quota_us) + " " +
                                              std::to_string(limits.cpu_period_us)));
      }
      return cg;
    }
    case CgroupVersion::kV1: {
      const auto mounts = v1Mounts();
      auto paths = v1Paths();
      for (const char* c : kControllers) {
        const auto dir = mounts.at(c) / std::filesystem::path(paths[c]).relative_path() / name;
        NV_TRY(makeCgroupDir(dir));
        cg.dirs_.push_back(dir);
        if (std::string(c) == "memory" && limits.memory_bytes > 0) {
          NV_TRY(writeFile(dir / "memory.limit_in_bytes", std::to_string(limits.memory_bytes)));
          if (std::filesystem::exists(dir / "memory.memsw.limit_in_bytes")) {
            NV_TRY(writeFile(dir / "memory.memsw.limit_in_bytes",
                             std::to_string(limits.memory_bytes)));
          }
        } else if (std::string(c) == "pids" && limits.pids > 0) {
          NV_TRY(writeFile(dir / "pids.max", std::to_string(limits.pids)));
        } else if (std::string(c) == "cpu" && limits.cpu_quota_us > 0) {
          NV_TRY(writeFile(dir / "cpu.cfs_period_us", std::to_string(limits.cpu_period_us)));
          NV_TRY(writeFile(dir / "cpu.cfs_quota_us", std::to_string(limits.cpu_quota_us)));
        }
      }
      return cg;
    }
  }
  return fail(Errc::kInternal, "unknown cgroup version");
}

SandboxCgroup& SandboxCgroup::operator=(SandboxCgroup&& other) noexcept {
  if (this != &other) {
    remove();
    dirs_ = std::exchange(other.dirs_, {});
  }
  return *this;
}

SandboxCgroup::~SandboxCgroup() { remove(); }

void SandboxCgroup::remove() noexcept {
  for (const auto& dir : dirs_) {
    // The VMM has been reaped, but its last threads may still be leaving the cgroup.
    for (int attempt = 0; attempt < 200; ++attempt) {
      if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) break;
      if (errno != EBUSY) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  dirs_.clear();
}

std::vector<std::filesystem::path> SandboxCgroup::procsFiles() const {
  std::vector<std::filesystem::path> out;
  for (const auto& dir : dirs_) out.push_back(dir / "cgroup.procs");
  return out;
}

SandboxCgroup SandboxCgroup::adopt(std::vector<std::filesystem::path> dirs) {
  SandboxCgroup cg;
  cg.dirs_ = std::move(dirs);
  return cg;
}

std::vector<pid_t> SandboxCgroup::pids() const {
  std::set<pid_t> pids;
  for (const auto& procs : procsFiles()) {
    std::istringstream in(readFile(procs));
    for (pid_t pid = 0; in >> pid;) {
      if (pid > 0) pids.insert(pid);
    }
  }
  return {pids.begin(), pids.end()};
}

size_t SandboxCgroup::killAll() const {
  size_t killed = 0;
  for (pid_t pid : pids()) {
    if (::kill(pid, SIGKILL) == 0) ++killed;
  }
  return killed;
}

Result<void> SandboxCgroup::join(pid_t pid) const {
  for (const auto& procs : procsFiles()) NV_TRY(writeFile(procs, std::to_string(pid)));
  return {};
}

}  // namespace nv::runtime
