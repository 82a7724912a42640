// SPDX-License-Identifier: Apache-2.0
// The nanovisor CLI's commands. Each returns the process exit status; errors are printed as
// one line "nanovisor: <what went wrong>" by the caller.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"
#include "runtime/config.h"
#include "runtime/sandbox.h"

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
  std::vector<std::string> volumes;       // HOSTDIR:CTRDIR:ro
  std::vector<std::string> secrets;       // id=NAME,src=FILE
  std::string name;
  double cpus = 0;
  std::string memory;
  std::string workdir;
  std::string user;
  std::string hostname;
  bool no_exec = false;
  std::string disk_bps;                   // RATE[:BURST] bytes/s
  std::string disk_iops;                  // RATE[:BURST] requests/s
  std::string log_max_size = "32m";       // -d: output.log rotates past this (2 files kept)
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

// Attached: returns the workload's exit status. Detached (-d): returns 0 once the workload runs
// in a supervisor process that outlives us (it owns the VM, serves api.sock, appends the
// workload's stdout+stderr to <state>/<id>/output.log and records the exit status).
[[nodiscard]] Result<int> runCommand(const GlobalOptions& global, const RunOptions& options);
[[nodiscard]] Result<int> execCommand(const GlobalOptions& global, const ExecOptions& options);
[[nodiscard]] Result<int> psCommand(const GlobalOptions& global, bool all);
// Prints a detached sandbox's output.log; `follow` keeps printing until the workload exits.
[[nodiscard]] Result<int> logsCommand(const GlobalOptions& global, const std::string& id,
                                      bool follow);
[[nodiscard]] Result<int> killCommand(const GlobalOptions& global, const std::string& id,
                                      const std::string& signal);
[[nodiscard]] Result<int> rmCommand(const GlobalOptions& global,
                                    const std::vector<std::string>& ids, bool force);
[[nodiscard]] Result<int> inspectCommand(const GlobalOptions& global, const std::string& id);
[[nodiscard]] Result<int> checkCommand(const GlobalOptions& global);

// "HOSTDIR:CTRDIR:ro" -> a read-only volume (HOSTDIR made absolute). Only read-only volumes
// exist (the directory is copied into a read-only disk), so ":ro" is required.
[[nodiscard]] Result<runtime::VolumeConfig> parseVolume(const std::string& text);

// "id=NAME,src=FILE" -> the secret NAME holding FILE's bytes (read now, kept in memory only).
[[nodiscard]] Result<runtime::SecretConfig> parseSecret(const std::string& text);

// "KILL", "SIGKILL", "9" -> 9.
[[nodiscard]] Result<int> parseSignal(const std::string& text);

}  // namespace nv::cli
