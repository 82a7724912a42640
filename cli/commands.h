// SPDX-License-Identifier: Apache-2.0
// The nanovisor CLI's commands. Each returns the process exit status; errors are printed as
// one line "nanovisor: <what went wrong>" by the caller.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"
#include "runtime/config.h"

namespace nv::cli {

struct GlobalOptions {
  std::string config_path = runtime::kDefaultConfigPath;
  bool config_explicit = false;
  std::string log_level;
  std::string state_dir;
  std::string image_root;
  std::string hypervisor;
};

// Loads the runtime config and applies the global flags over it.
[[nodiscard]] Result<runtime::RuntimeConfig> loadConfig(const GlobalOptions& global);

struct RunOptions {
  bool remove = false;
  bool detach = false;
  bool interactive = false;
  bool tty = false;
  std::vector<std::string> env;
  std::string name;
  double cpus = 0;
  std::string memory;
  std::string workdir;
  std::string user;
  std::string hostname;
  bool no_exec = false;
  std::string image;
  std::vector<std::string> command;
};

struct ExecOptions {
  bool interactive = false;
  bool tty = false;
  std::vector<std::string> env;
  std::string workdir;
  std::string user;
  std::string id;
  std::vector<std::string> command;
};

[[nodiscard]] Result<int> runCommand(const GlobalOptions& global, const RunOptions& options);
[[nodiscard]] Result<int> execCommand(const GlobalOptions& global, const ExecOptions& options);
[[nodiscard]] Result<int> psCommand(const GlobalOptions& global, bool all);
[[nodiscard]] Result<int> logsCommand(const GlobalOptions& global, const std::string& id);
[[nodiscard]] Result<int> killCommand(const GlobalOptions& global, const std::string& id,
                                      const std::string& signal);
[[nodiscard]] Result<int> rmCommand(const GlobalOptions& global,
                                    const std::vector<std::string>& ids, bool force);
[[nodiscard]] Result<int> inspectCommand(const GlobalOptions& global, const std::string& id);
[[nodiscard]] Result<int> checkCommand(const GlobalOptions& global);

// "KILL", "SIGKILL", "9" -> 9.
[[nodiscard]] Result<int> parseSignal(const std::string& text);

}  // namespace nv::cli
