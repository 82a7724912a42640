// SPDX-License-Identifier: Apache-2.0
// containerd.task.v2.Task served over common/ttrpc. A plain container gets its own micro-VM
// (runtime::Sandbox). A Kubernetes pod is one VM: its sandbox (pause) container creates it with
// spare disk slots, and the pod's other containers (config.json annotation
// io.kubernetes.cri.container-type=container, same io.kubernetes.cri.sandbox-id; containerd
// runs them on this shim, see runStart) go into it (Sandbox::addContainer). The VM ends with
// the sandbox container; the shim exits on Shutdown once no task is left. Create builds the rootfs disk from the snapshot directories and
// records the task (pid 0, CREATED); Start boots the VM and starts the container; Wait answers
// when the workload exited and its output was drained; Kill signals it through the agent;
// Delete reports the exit and forgets the task.
// Exec adds a process (exec_id) that Start runs through the agent's ExecProcess; State, Wait,
// Kill, Delete, CloseIO and ResizePty take the exec_id. Stats answers cgroup v2 Metrics from the
// agent, Pause/Resume stop and continue the whole VM (not a pod's), the agent's OOM events
// become /tasks/oom.
// Update answers UNIMPLEMENTED for real changes, Checkpoint always.
// Handlers run on the server's io thread; anything slow (rootfs build, VM boot, agent calls)
// runs on a worker thread that answers through the Responder.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/ttrpc/server.h"
#include "common/unique_fd.h"
#include "runtime/config.h"
#include "runtime/sandbox.h"
#include "runtime/stdio.h"
#include "shim/events.h"

namespace nv::shim {

inline constexpr const char* kTaskService = "containerd.task.v2.Task";
// Containers a pod holds besides its sandbox: QEMU microvm has 8 virtio-mmio transports; the
// agent channel, rng and the sandbox's rootfs take 3, one stays free.
inline constexpr uint32_t kPodDiskSlots = 4;

struct TaskServiceOptions {
  std::string namespace_name;
  runtime::RuntimeConfig runtime;
  std::filesystem::path sandbox_state_dir;  // where the task's sandbox directory goes
  std::function<void()> on_shutdown;        // called (io thread) when the daemon should exit
};

class TaskService {
 public:
  TaskService(TaskServiceOptions options, EventPublisher& events);
  ~TaskService();  // kills a still-running sandbox and joins the workers
  TaskService(const TaskService&) = delete;
  TaskService& operator=(const TaskService&) = delete;

  void registerOn(ttrpc::Server& server);

 private:
  struct Proc;
  struct Task;

  void create(ttrpc::Call call, ttrpc::Responder responder);
  void start(ttrpc::Call call, ttrpc::Responder responder);
  void state(ttrpc::Call call, ttrpc::Responder responder);
  void wait(ttrpc::Call call, ttrpc::Responder responder);
  void kill(ttrpc::Call call, ttrpc::Responder responder);
  void remove(ttrpc::Call call, ttrpc::Responder responder);
  void pids(ttrpc::Call call, ttrpc::Responder responder);
  void connect(ttrpc::Call call, ttrpc::Responder responder);
  void shutdown(ttrpc::Call call, ttrpc::Responder responder);
  void closeIo(ttrpc::Call call, ttrpc::Responder responder);
  void exec(ttrpc::Call call, ttrpc::Responder responder);
  void resizePty(ttrpc::Call call, ttrpc::Responder responder);
  void stats(ttrpc::Call call, ttrpc::Responder responder);
  void pause(ttrpc::Call call, ttrpc::Responder responder);
  void resume(ttrpc::Call call, ttrpc::Responder responder);
  void update(ttrpc::Call call, ttrpc::Responder responder);
  void checkpoint(ttrpc::Call call, ttrpc::Responder responder);

  // Runs `fn` (move-only is fine) on a worker thread, joined by the destructor.
  template <class F>
  void async(F fn);
  // The task with `id` (exec_id must be empty); nullptr (and `responder` answered NOT_FOUND)
  // otherwise. Locked caller.
  Task* findLocked(const std::string& id, const std::string& exec_id, ttrpc::Responder& responder);
  // The init (exec_id empty) or exec process; nullptr and NOT_FOUND otherwise. Locked caller.
  // `task_out`, when given, gets the process's task.
  Proc* findProcLocked(const std::string& id, const std::string& exec_id,
                       ttrpc::Responder& responder, Task** task_out = nullptr);
  // True while `task` is still in tasks_ (not deleted). Locked caller.
  bool aliveLocked(const Task* task) const;
  // True when `task` is still the current task and its VM runs (not paused unless
  // `paused_ok`); otherwise answers `responder`. Locked caller.
  bool runningLocked(const Task* task, ttrpc::Responder& responder, bool paused_ok = false);
  // The process ended (or never started): record, publish /tasks/exit, answer waiters.
  void markExited(const Task& task, Proc& proc, uint32_t exit_status);
  void watchInit(Task* task);
  void watchExec(Task* task, Proc* proc);
  void startExec(Task* task, Proc* proc, ttrpc::Responder responder);
  // Resumes a paused VM (Kill needs a running guest). Lifecycle-locked caller.
  Result<void> resumeLocked(Task* task);

  TaskServiceOptions options_;
  EventPublisher& events_;
  std::mutex mutex_;             // tasks_ and their fields
  std::map<std::string, std::unique_ptr<Task>> tasks_;
  std::set<std::string> creating_ids_;
  std::atomic<bool> stopping_{false};  // the destructor runs: a VM that finishes booting is killed
  // Held across agent calls and the sandbox teardown, so that no call uses a finished sandbox.
  std::mutex lifecycle_mutex_;
  std::mutex workers_mutex_;
  std::vector<std::thread> workers_;
};

}  // namespace nv::shim
