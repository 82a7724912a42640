// SPDX-License-Identifier: Apache-2.0
// AgentService: the agent's API (proto/agent.proto) as plain methods, independent of the
// transport. Owns the containers, their processes, cgroups and rootfs mounts.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent/cgroup.h"
#include "agent/oci_spec.h"
#include "agent/process.h"
#include "agent/reaper.h"
#include "agent/rootfs.h"
#include "common/result.h"
#include "common/unique_fd.h"
#include "proto/agent.pb.h"

namespace nv::agent {

// The agent's version string (the project version).
[[nodiscard]] const char* agentVersion();

struct AgentConfig {
  std::string state_dir = "/run/nanovisor-agent";  // per-container mount points
  std::string cgroup_root = "/sys/fs/cgroup";
  std::string self_exe = "/proc/self/exe";          // re-exec'd for container children
  bool host_mode = false;  // a test/debug process: directories as disks, host left alone
  bool test_crash_on_exec = false;  // BootOptions::test_crash_on_exec
};

// Thread-safe: every method may be called from any thread, and the blocking ones
// (waitProcess, readStdout/readStderr, getOomEvent, writeStdin) block only their caller.
class AgentService {
 public:
  AgentService(AgentConfig config, Reaper& reaper);
  ~AgentService();
  AgentService(const AgentService&) = delete;
  AgentService& operator=(const AgentService&) = delete;

  Result<pb::CreateSandboxResponse> createSandbox(const pb::CreateSandboxRequest& req);
  Result<pb::DestroySandboxResponse> destroySandbox(const pb::DestroySandboxRequest& req);
  Result<pb::CreateContainerResponse> createContainer(const pb::CreateContainerRequest& req);
  Result<pb::StartContainerResponse> startContainer(const pb::StartContainerRequest& req);
  Result<pb::RemoveContainerResponse> removeContainer(const pb::RemoveContainerRequest& req);
  Result<pb::ExecProcessResponse> execProcess(const pb::ExecProcessRequest& req);
  Result<pb::SignalProcessResponse> signalProcess(const pb::SignalProcessRequest& req);
  Result<pb::WaitProcessResponse> waitProcess(const pb::WaitProcessRequest& req);
  Result<pb::WriteStdinResponse> writeStdin(const pb::WriteStdinRequest& req);
  Result<pb::CloseStdinResponse> closeStdin(const pb::CloseStdinRequest& req);
  Result<pb::ReadStreamResponse> readStdout(const pb::ReadStreamRequest& req);
  Result<pb::ReadStreamResponse> readStderr(const pb::ReadStreamRequest& req);
  Result<pb::TtyWinResizeResponse> ttyWinResize(const pb::TtyWinResizeRequest& req);
  Result<pb::StatsResponse> stats(const pb::StatsRequest& req);
  Result<pb::GetOOMEventResponse> getOomEvent(const pb::GetOOMEventRequest& req);
  Result<pb::ListProcessesResponse> listProcesses(const pb::ListProcessesRequest& req);
  Result<pb::HealthResponse> health(const pb::HealthRequest& req);
  Result<pb::VersionResponse> version(const pb::VersionRequest& req);

  // Kills and removes every container (shutdown, DestroySandbox).
  void removeAll();

 private:
  struct Container {
    std::string id;
    std::string spec_json;
    Spec spec;
    std::string state_dir;
    PreparedRootfs rootfs;
    std::string cgroup_dir;
    std::shared_ptr<Process> init;
    UniqueFd start_sync;
    bool started = false;
    std::map<std::string, std::shared_ptr<Process>> execs;
    uint64_t oom_seen = 0;
  };

  Result<std::shared_ptr<Container>> findContainer(const std::string& id);
  // Namespaces a pod container joins (CLONE_NEW* flags) and the sandbox init that has them.
  struct PodJoin {
    int flags = 0;
    pid_t sandbox_pid = 0;
  };
  Result<PodJoin> podJoin(const Spec& spec, const pb::CreateContainerRequest& req);
  // /dev/shm as the agent's own tmpfs for the container, bound over the spec's: a pod member
  // that joins the sandbox's IPC namespace gets the sandbox's (CRI shares it with IPC).
  Result<void> podShm(const Spec& spec, const pb::CreateContainerRequest& req, const PodJoin& join,
                      Container& container);
  Result<std::shared_ptr<Process>> findProcess(const std::string& container_id,
                                               const std::string& exec_id);
  void destroyContainer(const std::shared_ptr<Container>& container);
  Result<pb::ReadStreamResponse> readStream(const pb::ReadStreamRequest& req, bool stderr_stream);
  void watchOom();

  const AgentConfig config_;
  Reaper& reaper_;
  Cgroups cgroups_;

  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<Container>> containers_;
  bool sandbox_created_ = false;
  bool exec_allowed_ = true;
  std::vector<std::string> dns_;

  std::mutex oom_mutex_;
  std::condition_variable oom_cv_;
  std::deque<std::string> oom_events_;  // bounded
  std::atomic<bool> stopping_{false};
  std::thread oom_thread_;
};

}  // namespace nv::agent
