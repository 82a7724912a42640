// SPDX-License-Identifier: Apache-2.0
// ProcessStdio: forwards a guest process's stdin/stdout/stderr between host file descriptors
// and the agent's pull-based stream calls, one thread per direction. Back-pressure is end to
// end: a slow host writer stops the pulls, the agent's bounded buffer fills, the workload
// blocks on its pipe.
#pragma once

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "common/event_fd.h"
#include "runtime/agent_client.h"

namespace nv::runtime {

class ProcessStdio {
 public:
  ProcessStdio(AgentClient& agent, std::string container_id, std::string exec_id);
  ~ProcessStdio();
  ProcessStdio(const ProcessStdio&) = delete;
  ProcessStdio& operator=(const ProcessStdio&) = delete;

  // Starts forwarding; -1 skips a stream. Stdin reaching EOF closes the process's stdin.
  void start(int in_fd, int out_fd, int err_fd);
  // Waits until stdout and stderr reached EOF (call after the process exited), then stops the
  // stdin thread.
  void drain();

  [[nodiscard]] Result<void> signal(int sig);
  [[nodiscard]] Result<void> resize(unsigned rows, unsigned columns);

 private:
  void pumpOutput(const char* method, int fd);
  void pumpInput(int fd);

  AgentClient& agent_;
  std::string container_id_;
  std::string exec_id_;
  EventFd stop_;
  std::vector<std::thread> outputs_;
  std::thread input_;
};

}  // namespace nv::runtime
