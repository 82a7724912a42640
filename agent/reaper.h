// SPDX-License-Identifier: Apache-2.0
// Reaper: collects every child's exit status (and, as PID 1, every orphan's) and hands it to
// whoever registered for that pid.
#pragma once

#include <sys/types.h>

#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

namespace nv::agent {

// Owned by the agent's main; one per process. SIGCHLD must be blocked in every thread
// (blockSignals() before any thread starts); the reaper thread waits for it with sigwaitinfo.
class Reaper {
 public:
  using ExitCallback = std::function<void(int wait_status)>;

  // Blocks SIGCHLD in the calling thread (call in main before starting threads).
  static void blockSignals();

  Reaper() = default;
  ~Reaper();
  Reaper(const Reaper&) = delete;
  Reaper& operator=(const Reaper&) = delete;

  // Starts the reaper thread.
  void start();

  // Calls `on_exit` (on the reaper thread) when `pid` exits; at once if it already did.
  void watch(pid_t pid, ExitCallback on_exit);

  // Holds the reaper's lock so a child can be cloned and watched before it is reaped.
  [[nodiscard]] std::unique_lock<std::mutex> lock() { return std::unique_lock(mutex_); }
  // watch() for callers holding lock().
  void watchLocked(pid_t pid, ExitCallback on_exit);

 private:
  void run();
  void reapAll();

  std::mutex mutex_;
  std::map<pid_t, ExitCallback> watched_;
  std::map<pid_t, int> unclaimed_;  // exits nobody watched yet (bounded)
  std::deque<pid_t> unclaimed_order_;
  std::thread thread_;
};

}  // namespace nv::agent
