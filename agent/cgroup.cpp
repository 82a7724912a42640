// SPDX-License-Identifier: Apache-2.0
// cgroup v2 management for containers.
#include "agent/cgroup.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <sstream>

#include "agent/passwd.h"
#include "common/unique_fd.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

namespace nv::agent {
namespace {

Result<void> writeFile(const std::string& path, const std::string& value) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) {
    return failErrno("open " + path);
  }
  if (::write(fd.get(), value.data(), value.size()) < 0) {
    return failErrno("write " + value + " to " + path);
  }
  return {};
}

uint64_t readNumber(const std::string& path) {
  std::string text = readSmallFile(path, 64);
  if (text.empty() || text.starts_with("max")) {
    return 0;
  }
  return std::strtoull(text.c_str(), nullptr, 10);
}

}  // namespace

int64_t containerTaskBudget() {
  int64_t threads_max =
      static_cast<int64_t>(std::strtoll(readSmallFile("/proc/sys/kernel/threads-max", 64).c_str(),
                                        nullptr, 10));
  if (threads_max <= 0) threads_max = 4096;
  return std::max<int64_t>(threads_max - kAgentTaskReserve, 64);
}

Cgroups::Cgroups(std::string root) : root_(std::move(root)) {
  struct statfs fs {};
  available_ = ::statfs(root_.c_str(), &fs) == 0 &&
               static_cast<unsigned long>(fs.f_type) == CGROUP2_SUPER_MAGIC &&
               ::access(root_.c_str(), W_OK) == 0;
}

Result<void> Cgroups::enableControllers(const std::string& dir) {
  std::string offered = readSmallFile(dir + "/cgroup.controllers", 4096);
  std::string wanted;
  for (const char* c : {"cpu", "memory", "pids", "io"}) {
    std::istringstream in(offered);
    std::string word;
    while (in >> word) {
      if (word == c) {
        wanted += std::string(wanted.empty() ? "" : " ") + "+" + c;
      }
    }
  }
  if (wanted.empty()) {
    return {};
  }
  return writeFile(dir + "/cgroup.subtree_control", wanted);
}

Result<std::string> Cgroups::create(const std::string& id, const ResourcesSpec& resources) {
  bool wants_limits = resources.memory_limit || resources.cpu_quota || resources.pids_limit ||
                      resources.cpu_shares;
  if (!available_) {
    if (wants_limits) {
      return fail(Errc::kUnsupported,
                  "resource limits need cgroup v2 at " + root_ + " (not available)");
    }
    return std::string();
  }
  std::string parent = root_ + "/nanovisor";
  if (::mkdir(parent.c_str(), 0755) < 0 && errno != EEXIST) {
    return failErrno("mkdir " + parent);
  }
  // The controllers must be enabled at every level down to the container's parent.
  (void)enableControllers(root_);
  (void)enableControllers(parent);
  // All containers together may not fill the guest's task table: the agent (PID 1) keeps
  // room for its threads and the processes it spawns (a fork bomb must not end the guest).
  (void)writeFile(parent + "/pids.max", std::to_string(containerTaskBudget()));
  std::string dir = parent + "/" + id;
  if (::mkdir(dir.c_str(), 0755) < 0) {
    return failErrno("mkdir " + dir);
  }
  auto cleanup = [&](const Error& e) {
    ::rmdir(dir.c_str());
    return Unexpected(e);
  };
  if (resources.memory_limit) {
    std::string v = *resources.memory_limit < 0 ? "max" : std::to_string(*resources.memory_limit);
    if (auto r = writeFile(dir + "/memory.max", v); !r) {
      return cleanup(r.error());
    }
    // No swap inside the guest anyway; make the limit a real one where swap exists.
    (void)writeFile(dir + "/memory.swap.max", "0");
  }
  if (resources.cpu_quota || resources.cpu_period) {
    if (auto r = writeFile(dir + "/cpu.max", cpuMaxValue(resources.cpu_quota, resources.cpu_period));
        !r) {
      return cleanup(r.error());
    }
  }
  if (resources.cpu_shares) {
    if (auto r = writeFile(dir + "/cpu.weight",
                           std::to_string(cpuWeightFromShares(*resources.cpu_shares)));
        !r) {
      return cleanup(r.error());
    }
  }
  if (resources.pids_limit) {
    std::string v = *resources.pids_limit <= 0 ? "max" : std::to_string(*resources.pids_limit);
    if (auto r = writeFile(dir + "/pids.max", v); !r) {
      return cleanup(r.error());
    }
  }
  return dir;
}

void Cgroups::killAll(const std::string& dir) {
  if (dir.empty()) {
    return;
  }
  if (writeFile(dir + "/cgroup.kill", "1")) {
    return;
  }
  for (pid_t pid : pids(dir)) {
    ::kill(pid, SIGKILL);
  }
}

void Cgroups::remove(const std::string& dir) {
  if (dir.empty()) {
    return;
  }
  killAll(dir);
  for (int attempt = 0; attempt < 100; ++attempt) {
    if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) {
      return;
    }
    ::usleep(10000);  // the killed processes leave the cgroup asynchronously
  }
}

CgroupStats Cgroups::stats(const std::string& dir) {
  CgroupStats s;
  if (dir.empty()) {
    return s;
  }
  std::string cpu = readSmallFile(dir + "/cpu.stat", 4096);
  s.cpu_usage_usec = flatKeyedValue(cpu, "usage_usec");
  s.cpu_user_usec = flatKeyedValue(cpu, "user_usec");
  s.cpu_system_usec = flatKeyedValue(cpu, "system_usec");
  s.memory_current = readNumber(dir + "/memory.current");
  s.memory_max = readNumber(dir + "/memory.max");
  s.memory_peak = readNumber(dir + "/memory.peak");
  s.oom_kills = oomKills(dir);
  s.pids_current = readNumber(dir + "/pids.current");
  s.pids_max = readNumber(dir + "/pids.max");
  std::istringstream io(readSmallFile(dir + "/io.stat", 65536));
  std::string word;
  while (io >> word) {
    if (word.starts_with("rbytes=")) {
      s.io_read_bytes += std::strtoull(word.c_str() + 7, nullptr, 10);
    } else if (word.starts_with("wbytes=")) {
      s.io_write_bytes += std::strtoull(word.c_str() + 7, nullptr, 10);
    }
  }
  return s;
}

uint64_t Cgroups::oomKills(const std::string& dir) {
  if (dir.empty()) {
    return 0;
  }
  return flatKeyedValue(readSmallFile(dir + "/memory.events", 4096), "oom_kill");
}

std::vector<pid_t> Cgroups::pids(const std::string& dir) {
  std::vector<pid_t> out;
  std::istringstream in(readSmallFile(dir + "/cgroup.procs"));
  long pid = 0;
  while (in >> pid) {
    out.push_back(static_cast<pid_t>(pid));
  }
  return out;
}

std::string cpuMaxValue(std::optional<int64_t> quota, std::optional<uint64_t> period) {
  std::string q = (!quota || *quota <= 0) ? "max" : std::to_string(*quota);
  return q + " " + std::to_string(period.value_or(100000));
}

uint64_t cpuWeightFromShares(uint64_t shares) {
  if (shares == 0) {
    return 100;
  }
  if (shares < 2) {
    shares = 2;
  }
  if (shares > 262144) {
    shares = 262144;
  }
  return 1 + ((shares - 2) * 9999) / 262142;
}

uint64_t flatKeyedValue(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  std::string k;
  uint64_t v = 0;
  while (in >> k >> v) {
    if (k == key) {
      return v;
    }
  }
  return 0;
}

}  // namespace nv::agent
