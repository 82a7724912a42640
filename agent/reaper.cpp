// SPDX-License-Identifier: Apache-2.0
// Child reaping on a dedicated thread.
#include "agent/reaper.h"

#include <sys/wait.h>

#include <csignal>
#include <vector>

namespace nv::agent {
namespace {
constexpr size_t kMaxUnclaimed = 1024;
}

void Reaper::blockSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

Reaper::~Reaper() {
  if (thread_.joinable()) {
    thread_.detach();  // blocked in sigwaitinfo; the process is exiting
  }
}

void Reaper::start() {
  thread_ = std::thread([this] { run(); });
}

void Reaper::watch(pid_t pid, ExitCallback on_exit) {
  std::unique_lock l(mutex_);
  watchLocked(pid, std::move(on_exit));
}

void Reaper::watchLocked(pid_t pid, ExitCallback on_exit) {
  if (auto it = unclaimed_.find(pid); it != unclaimed_.end()) {
    int status = it->second;
    unclaimed_.erase(it);
    on_exit(status);
    return;
  }
  watched_[pid] = std::move(on_exit);
}

void Reaper::run() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  while (true) {
    reapAll();
    siginfo_t info;
    timespec timeout{1, 0};  // also catches exits whose SIGCHLD coalesced with another
    sigtimedwait(&set, &info, &timeout);
  }
}

void Reaper::reapAll() {
  while (true) {
    int status = 0;
    pid_t pid = waitpid(-1, &status, WNOHANG | __WALL);
    if (pid <= 0) {
      return;
    }
    ExitCallback callback;
    {
      std::lock_guard l(mutex_);
      if (auto it = watched_.find(pid); it != watched_.end()) {
        callback = std::move(it->second);
        watched_.erase(it);
      } else {
        unclaimed_[pid] = status;
        unclaimed_order_.push_back(pid);
        while (unclaimed_order_.size() > kMaxUnclaimed) {
          unclaimed_.erase(unclaimed_order_.front());
          unclaimed_order_.pop_front();
        }
      }
    }
    if (callback) {
      callback(status);
    }
  }
}

}  // namespace nv::agent
