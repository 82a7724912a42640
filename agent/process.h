// SPDX-License-Identifier: Apache-2.0
// Process: the agent's record of one container process (init or exec): its stdio streams,
// terminal and exit status.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>

#include "agent/stream_buffer.h"
#include "common/result.h"
#include "common/unique_fd.h"

namespace nv::agent {

// Bytes buffered per output stream before the process is made to wait.
inline constexpr size_t kStreamBufferBytes = 1024 * 1024;
// Largest chunk a ReadStdout/WriteStdin moves.
inline constexpr size_t kMaxChunkBytes = 1024 * 1024;

// The host-side ends of a process's stdio, created before it is spawned.
struct Stdio {
  // Child ends (given to the child as 0, 1, 2; closed in the agent after spawning).
  UniqueFd child_in;
  UniqueFd child_out;
  UniqueFd child_err;
  // Agent ends.
  UniqueFd in;      // write end of stdin (the pty master with a tty)
  UniqueFd out;     // read end of stdout (a dup of the pty master with a tty)
  UniqueFd err;     // read end of stderr (none with a tty)
  bool tty = false;
};

// Pipes; with `tty` the child gets /dev/null and opens the terminal itself inside the
// container (its devpts), then passes the master back (Process::attachTerminal).
[[nodiscard]] Result<Stdio> makeStdio(bool tty);

struct ExitInfo {
  int exit_status = 0;    // code, or 128+signal
  int64_t exited_at_ns = 0;
  bool signalled = false;
  int signal = 0;
};

// Shared between the service (requests) and the reaper thread (exit). Thread-safe.
class Process {
 public:
  // Takes the agent ends of `stdio` and starts the output pump threads.
  Process(std::string exec_id, Stdio stdio);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  [[nodiscard]] const std::string& execId() const { return exec_id_; }
  [[nodiscard]] pid_t pid() const;
  void setPid(pid_t pid);

  // Called by the reaper with the waitpid status.
  void onExit(int wait_status);
  [[nodiscard]] std::optional<ExitInfo> exitInfo() const;
  // Blocks until the process exited.
  [[nodiscard]] ExitInfo wait();
  // Exited, waited for, and its output read to the end: its client is done with it.
  [[nodiscard]] bool collected() const;

  // Takes the pty master of a terminal process and starts pumping its output.
  void attachTerminal(UniqueFd master);

  [[nodiscard]] Result<size_t> writeStdin(std::span<const uint8_t> data);
  void closeStdin();
  [[nodiscard]] StreamBuffer::ReadResult readStdout(size_t max_bytes);
  [[nodiscard]] StreamBuffer::ReadResult readStderr(size_t max_bytes);
  [[nodiscard]] Result<void> resize(uint16_t rows, uint16_t columns);
  [[nodiscard]] Result<void> signal(int sig);

  // Wakes all readers with EOF (container removal).
  void cancelStreams();

 private:
  static void startPump(UniqueFd fd, std::shared_ptr<StreamBuffer> buffer);

  const std::string exec_id_;
  const bool tty_;
  mutable std::mutex mutex_;
  std::condition_variable exited_cv_;
  pid_t pid_ = -1;
  std::optional<ExitInfo> exit_;
  bool waited_ = false;
  UniqueFd stdin_;
  UniqueFd tty_master_;  // for resize
  std::shared_ptr<StreamBuffer> stdout_;
  std::shared_ptr<StreamBuffer> stderr_;
};

}  // namespace nv::agent
