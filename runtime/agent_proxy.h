// SPDX-License-Identifier: Apache-2.0
// AgentProxy: serves the agent's ttrpc API on a sandbox's api.sock and forwards every call over
// the one agent connection that the sandbox owner holds (a virtio-serial port accepts a
// single host connection). This is how `nanovisor exec/kill/ps` reach a sandbox that another
// process runs. Each request runs on its own thread, so blocking calls (WaitProcess,
// ReadStdout) do not hold up others; in-flight requests per connection are capped.
#pragma once

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "runtime/agent_client.h"

namespace nv::runtime {

class AgentProxy {
 public:
  // Listens on `socket` (mode 0600) and forwards to `agent`.
  [[nodiscard]] static Result<std::unique_ptr<AgentProxy>> start(
      const std::filesystem::path& socket, std::shared_ptr<AgentClient> agent);
  ~AgentProxy();
  AgentProxy(const AgentProxy&) = delete;
  AgentProxy& operator=(const AgentProxy&) = delete;

  // Stops accepting, closes client connections and waits for all threads. The agent
  // connection must be closed first (AgentClient::close) so blocked forwards return.
  void stop();

 private:
  struct Connection;
  AgentProxy(std::filesystem::path socket, UniqueFd listener, std::shared_ptr<AgentClient> agent)
      : socket_(std::move(socket)), listener_(std::move(listener)), agent_(std::move(agent)) {}
  void acceptLoop();
  void serve(std::shared_ptr<Connection> connection);

  std::filesystem::path socket_;
  UniqueFd listener_;
  std::shared_ptr<AgentClient> agent_;
  std::atomic<bool> stopping_{false};
  std::mutex mutex_;
  std::vector<std::shared_ptr<Connection>> connections_;
  int active_workers_ = 0;
  std::condition_variable workers_done_;
  std::thread acceptor_;
};

}  // namespace nv::runtime
