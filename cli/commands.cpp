// SPDX-License-Identifier: Apache-2.0
// Commands that work on sandbox state and the host: ps, inspect, logs, check.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <thread>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "common/syscall.h"
#include "common/unique_fd.h"
#include "runtime/host_probe.h"
#include "runtime/state.h"
#include "runtime/stdio.h"

namespace nv::cli {
namespace {

std::string age(int64_t unix_time) {
  if (unix_time <= 0) return "-";
  int64_t s = static_cast<int64_t>(std::time(nullptr)) - unix_time;
  if (s < 60) return std::to_string(s) + "s";
  if (s < 3600) return std::to_string(s / 60) + "m";
  if (s < 86400) return std::to_string(s / 3600) + "h";
  return std::to_string(s / 86400) + "d";
}

std::string joined(const std::vector<std::string>& words, size_t max) {
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : " ") + w;
  return out.size() > max ? out.substr(0, max - 3) + "..." : out;
}

}  // namespace

Result<runtime::RuntimeConfig> loadConfig(const GlobalOptions& global) {
  NV_ASSIGN_OR_RETURN(auto config,
                      runtime::RuntimeConfig::load(global.config_path, global.config_explicit));
  if (!global.state_dir.empty()) config.state_dir = global.state_dir;
  if (!global.image_root.empty()) config.image_root = global.image_root;
  if (!global.hypervisor.empty()) config.hypervisor = global.hypervisor;
  if (!global.log_level.empty()) config.log_level = global.log_level;
  NV_TRY(config.validate());
  return config;
}

Result<int> parseSignal(const std::string& text) {
  static const std::pair<const char*, int> kSignals[] = {
      {"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT}, {"KILL", SIGKILL},
      {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"TERM", SIGTERM}, {"CONT", SIGCONT},
      {"STOP", SIGSTOP}, {"WINCH", SIGWINCH}};
  std::string name = text.rfind("SIG", 0) == 0 ? text.substr(3) : text;
  for (const auto& [n, number] : kSignals) {
    if (name == n) return number;
  }
  if (!name.empty() && name.size() <= 2 && name.find_first_not_of("0123456789") == std::string::npos) {
    int number = std::stoi(name);
    if (number >= 1 && number <= 64) return number;
  }
  return fail(Errc::kInvalidArgument, "unknown signal '" + text + "'");
}

Result<int> psCommand(const GlobalOptions& global, bool all) {
  NV_ASSIGN_OR_RETURN(auto config, loadConfig(global));
  runtime::StateStore store(config.state_dir);
  NV_ASSIGN_OR_RETURN(auto sandboxes, store.list());
  std::printf("%-14s %-24s %-28s %-10s %-8s %s\n", "ID", "IMAGE", "COMMAND", "STATUS", "CREATED",
              "DRIVER");
  for (const auto& s : sandboxes) {
    std::string status = s.liveStatus();
    if (!all && status != "running" && status != "creating") continue;
    if (status == "exited") status += " (" + std::to_string(s.exit_code) + ")";
    std::printf("%-14s %-24s %-28s %-10s %-8s %s\n", s.id.c_str(), s.image.substr(0, 24).c_str(),
                joined(s.command, 28).c_str(), status.c_str(), age(s.created_unix).c_str(),
                s.driver.c_str());
  }
  return 0;
}

Result<int> inspectCommand(const GlobalOptions& global, const std::string& id) {
  NV_ASSIGN_OR_RETURN(auto config, loadConfig(global));
  runtime::StateStore store(config.state_dir);
  NV_ASSIGN_OR_RETURN(auto full_id, store.resolve(id));
  std::ifstream in(store.dir(full_id) / "state.json");
  auto j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded()) return fail(Errc::kInvalidArgument, "state of " + full_id + " is corrupt");
  NV_ASSIGN_OR_RETURN(auto state, store.load(full_id));
  j["status"] = state.liveStatus();
  j["dir"] = store.dir(full_id).string();
  std::cout << j.dump(2) << "\n";
  return 0;
}

Result<int> logsCommand(const GlobalOptions& global, const std::string& id, bool follow) {
  NV_ASSIGN_OR_RETURN(auto config, loadConfig(global));
  runtime::StateStore store(config.state_dir);
  NV_ASSIGN_OR_RETURN(auto full_id, store.resolve(id));
  const auto path = store.dir(full_id) / "output.log";
  if (::access(path.c_str(), F_OK) != 0) {
    return fail(Errc::kNotFound, "sandbox " + full_id + " has no log (only run -d keeps one)");
  }
  // Copies what `fd` holds from its offset on; false when stdout is gone (`logs -f x | head`).
  auto copy = [](int fd) -> bool {
    char buffer[65536];
    for (;;) {
      ssize_t n = retryOnEintr([&] { return ::read(fd, buffer, sizeof buffer); });
      if (n <= 0) return true;
      size_t done = 0;
      while (done < static_cast<size_t>(n)) {
        ssize_t w = retryOnEintr(
            [&] { return ::write(1, buffer + done, static_cast<size_t>(n) - done); });
        if (w <= 0) return false;
        done += static_cast<size_t>(w);
      }
    }
  };
  // The log rotates (runtime::RotatingLog): the older file first, then the current one.
  UniqueFd log;
  for (const auto& file : runtime::rotatedLogFiles(path)) {
    log.reset(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
    if (!log) return failErrno("cannot open " + file.string());
    if (!copy(log.get())) return 0;
  }
  if (!follow) return 0;
  // -f: keep copying while the supervisor runs; its last output is written before it records
  // the exit, so one more copy after that gets everything. After a rotation the file we read
  // is output.log.1: finish it, then go on with the new output.log.
  auto rotated = [&] {
    struct stat open_file{}, named{};
    return ::fstat(log.get(), &open_file) == 0 && ::stat(path.c_str(), &named) == 0 &&
           open_file.st_ino != named.st_ino;
  };
  for (;;) {
    auto state = store.load(full_id);
    const std::string status = state ? state->liveStatus() : "removed";
    const bool live = status == "running" || status == "creating";
    if (!copy(log.get())) return 0;
    if (rotated()) {
      log.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
      if (!log) return failErrno("cannot open " + path.string());
      continue;
    }
    if (!live) return 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

Result<int> checkCommand(const GlobalOptions& global) {
  NV_ASSIGN_OR_RETURN(auto config, loadConfig(global));
  bool required_ok = true;
  for (const auto& item : runtime::hostChecks(config)) {
    const char* mark = item.ok ? "ok  " : (item.required ? "FAIL" : "no  ");
    std::printf("[%s] %s: %s\n", mark, item.name.c_str(), item.detail.c_str());
    if (!item.ok && !item.fix.empty()) std::printf("       fix: %s\n", item.fix.c_str());
    required_ok = required_ok && (item.ok || !item.required);
  }
  return required_ok ? 0 : 1;
}

}  // namespace nv::cli
