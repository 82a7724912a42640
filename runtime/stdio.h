// SPDX-License-Identifier: Apache-2.0
// ProcessStdio: forwards a guest process's stdin/stdout/stderr between host file descriptors
// and the agent's pull-based stream calls, one thread per direction. Back-pressure is end to
// end: a slow host writer stops the pulls, the agent's bounded buffer fills, the workload
// blocks on its pipe.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/event_fd.h"
#include "common/unique_fd.h"
#include "runtime/agent_client.h"

namespace nv::runtime {

// A detached sandbox's output log, bounded like docker's max-size with two files: a write
// that would take `path` past max_bytes first renames it to `path`.1 (replacing the older
// one) and starts a new `path`, so a flood of output keeps at most 2 × max_bytes on disk
// (one write of more than max_bytes still lands whole). Thread-safe.
class RotatingLog {
 public:
  [[nodiscard]] static Result<std::unique_ptr<RotatingLog>> open(std::filesystem::path path,
                                                                 uint64_t max_bytes);
  // False once the log cannot be written (the error is logged once).
  bool write(std::string_view data);

 private:
  RotatingLog(std::filesystem::path path, uint64_t max_bytes, UniqueFd fd, uint64_t size)
      : path_(std::move(path)), max_bytes_(max_bytes), fd_(std::move(fd)), size_(size) {}
  std::mutex mutex_;
  std::filesystem::path path_;
  uint64_t max_bytes_;
  UniqueFd fd_;
  uint64_t size_;
};

// Keeps a VM's console log within two files of max_bytes while the VM runs: the VMM writes
// `path` with O_APPEND (a guest decides how much); every 250 ms a thread checks its size and,
// once past max_bytes, copies it to `path`.1 and truncates it, so the VMM's next write starts
// it again. What the guest writes between the copy and the truncation is lost (the console is
// a debugging aid; the agent channel carries the workload's output). Stops when destroyed.
class ConsoleLogCap {
 public:
  ConsoleLogCap(std::filesystem::path path, uint64_t max_bytes);
  ~ConsoleLogCap();
  ConsoleLogCap(const ConsoleLogCap&) = delete;
  ConsoleLogCap& operator=(const ConsoleLogCap&) = delete;

  // One check (the thread's step; public for tests): rotates when `path` is past max_bytes.
  void check();

 private:
  std::mutex mutex_;  // one check at a time
  std::filesystem::path path_;
  uint64_t max_bytes_;
  EventFd stop_;
  std::thread thread_;
};

// The files of a RotatingLog at `path`, oldest first: `path`.1 when it exists, then `path`.
[[nodiscard]] std::vector<std::filesystem::path> rotatedLogFiles(const std::filesystem::path& path);

class ProcessStdio {
 public:
  ProcessStdio(AgentClient& agent, std::string container_id, std::string exec_id);
  ~ProcessStdio();
  ProcessStdio(const ProcessStdio&) = delete;
  ProcessStdio& operator=(const ProcessStdio&) = delete;

  // Takes a chunk of output; false: the host side is gone (the rest is drained, dropped).
  using Writer = std::function<bool(const std::string&)>;

  // Starts forwarding; -1 (or an empty writer) skips a stream. Stdin reaching EOF closes the
  // process's stdin.
  void start(int in_fd, int out_fd, int err_fd);
  void start(int in_fd, Writer out, Writer err);
  // Waits until stdout and stderr reached EOF (call after the process exited), then stops the
  // stdin thread.
  void drain();

  [[nodiscard]] Result<void> signal(int sig);
  [[nodiscard]] Result<void> resize(unsigned rows, unsigned columns);

 private:
  void pumpOutput(const char* method, const Writer& write);
  void pumpInput(int fd);

  AgentClient& agent_;
  std::string container_id_;
  std::string exec_id_;
  EventFd stop_;
  std::vector<std::thread> outputs_;
  std::thread input_;
};

}  // namespace nv::runtime
