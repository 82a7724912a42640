// SPDX-License-Identifier: Apache-2.0
// Subprocess: starts a program and owns it until it is reaped (pidfd-based, no SIGCHLD games).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"

namespace nv {

struct SpawnOptions {
  std::vector<std::string> argv;       // argv[0] is looked up in PATH when it has no '/'
  std::vector<std::string> extra_env;  // "K=V" added to (or replacing in) the inherited env
  std::string stdin_path = "/dev/null";
  std::string stdout_path;             // empty: inherit; else opened O_APPEND|O_CREAT, 0600
  std::string stderr_path;             // empty: inherit; "=stdout" joins stdout
  bool new_session = false;            // setsid(): detach from the terminal's signals
  bool die_with_parent = false;        // PR_SET_PDEATHSIG SIGKILL
};

// A started child process. Destroying a Subprocess that still runs kills (SIGKILL) and reaps it,
// so no child outlives its owner by accident; release() hands the process off instead.
class Subprocess {
 public:
  [[nodiscard]] static Result<Subprocess> spawn(const SpawnOptions& options);
  // Takes ownership of a child started some other way (e.g. clone3 into namespaces, see
  // runtime/jail.h): `pid` must be our child and `pidfd` its pidfd.
  [[nodiscard]] static Subprocess adopt(pid_t pid, UniqueFd pidfd) {
    return Subprocess(pid, std::move(pidfd));
  }

  Subprocess(Subprocess&& other) noexcept
      : pid_(std::exchange(other.pid_, -1)),
        pidfd_(std::move(other.pidfd_)),
        status_(std::exchange(other.status_, std::nullopt)) {}
  Subprocess& operator=(Subprocess&&) noexcept;
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;
  ~Subprocess();

  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  // A pidfd that becomes readable when the process exits (for event loops).
  [[nodiscard]] int pidfd() const noexcept { return pidfd_.get(); }

  // Sends a signal (no-op once reaped).
  [[nodiscard]] Result<void> signal(int sig) const;
  // Waits up to `timeout` for exit; returns the wait status (see waitStatusToExitCode) or
  // Errc::kTimeout. A timeout of zero polls.
  [[nodiscard]] Result<int> wait(std::chrono::milliseconds timeout);
  [[nodiscard]] bool exited() const noexcept { return status_.has_value(); }
  // Stops owning the process: it keeps running and is no longer killed by the destructor.
  pid_t release() noexcept;

 private:
  Subprocess(pid_t pid, UniqueFd pidfd) : pid_(pid), pidfd_(std::move(pidfd)) {}
  void killAndReap() noexcept;

  pid_t pid_ = -1;
  UniqueFd pidfd_;
  std::optional<int> status_;
};

// Shell-style exit code of a wait status: the exit code, or 128 + signal number.
int waitStatusToExitCode(int status) noexcept;

// Runs a program to completion, capturing stdout+stderr (bounded to `max_output` bytes).
struct RunResult {
  int exit_code = -1;
  std::string output;
};
[[nodiscard]] Result<RunResult> runCommand(const std::vector<std::string>& argv,
                                           std::chrono::milliseconds timeout,
                                           size_t max_output = 1 << 20);

}  // namespace nv
