// SPDX-License-Identifier: Apache-2.0
// StateStore: sandbox state on disk, one directory per sandbox under the state root
// (default /run/nanovisor/<id>/state.json), written atomically. Secrets never go here.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "common/result.h"

namespace nv::runtime {

struct SandboxState {
  std::string id;
  std::string image;
  std::vector<std::string> command;
  std::string status = "creating";   // creating | running | exited | failed
  int exit_code = -1;
  std::string error;                 // why it failed, one line
  std::string driver;
  pid_t owner_pid = 0;               // the process that owns the VM (CLI run or supervisor)
  pid_t vmm_pid = 0;
  uint32_t cpus = 1;
  uint64_t memory_mib = 256;
  std::string disk_bps;                // the disk rate limits (formatRateLimit); "" unlimited
  std::string disk_iops;
  bool auto_remove = false;
  int64_t created_unix = 0;
  int64_t finished_unix = 0;

  // "running" whose owner process is gone reads as "dead".
  [[nodiscard]] std::string liveStatus() const;
};

class StateStore {
 public:
  explicit StateStore(std::filesystem::path root) : root_(std::move(root)) {}

  [[nodiscard]] const std::filesystem::path& root() const { return root_; }
  [[nodiscard]] std::filesystem::path dir(const std::string& id) const { return root_ / id; }

  // Creates the sandbox's directory (0700); Errc::kAlreadyExists when the id is taken.
  [[nodiscard]] Result<std::filesystem::path> create(const std::string& id) const;
  [[nodiscard]] Result<void> save(const SandboxState& state) const;
  [[nodiscard]] Result<SandboxState> load(const std::string& id) const;
  [[nodiscard]] Result<std::vector<SandboxState>> list() const;
  // Removes the sandbox directory and everything in it.
  [[nodiscard]] Result<void> remove(const std::string& id) const;
  // The id of the one sandbox whose id starts with `prefix` (docker-style short ids).
  [[nodiscard]] Result<std::string> resolve(const std::string& prefix) const;

 private:
  std::filesystem::path root_;
};

// A random 12-hex-digit sandbox id.
[[nodiscard]] std::string newSandboxId();

}  // namespace nv::runtime
