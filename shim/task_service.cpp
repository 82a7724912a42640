// SPDX-License-Identifier: Apache-2.0
#include "shim/task_service.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <fstream>
#include <map>

#include "common/scope_guard.h"
#include "common/logging.h"
#include "common/syscall.h"
#include "images/rootfs.h"
#include "images/store.h"
#include "shim/bundle.h"
#include "shim/daemon.h"
#include "shim/metrics.h"
#include "shim/options.h"

namespace nv::shim {
namespace {

using ttrpc::Call;
using ttrpc::Responder;
using ttrpc::Status;
using ttrpc::StatusCode;

template <class Req>
bool parse(const Call& call, Req& request, Responder& responder) {
  if (request.ParseFromString(call.payload)) return true;
  responder.fail({StatusCode::kInvalidArgument, "cannot parse the " + call.method + " request"});
  return false;
}

void failWith(Responder& responder, const Error& error) {
  responder.fail(ttrpc::errorToStatus(error));
}

// Opens an output stream named by containerd: a FIFO path (a second read handle is kept so
// that opening for writing never blocks and writes never fail while the reader is away), or a
// file:// URI. Empty: no stream.
Result<UniqueFd> openOutput(const std::string& uri, UniqueFd& keep) {
  if (uri.empty()) return UniqueFd();
  if (uri.rfind("file://", 0) == 0) {
    std::string path = uri.substr(7);
    int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) return fail(Errc::kUnavailable, "open " + path + ": " + std::strerror(errno));
    return UniqueFd(fd);
  }
  if (uri.find("://") != std::string::npos && uri.rfind("fifo://", 0) != 0) {
    return fail(Errc::kUnsupported, "stdio URI " + uri + " is not supported (FIFO or file://)");
  }
  std::string path = uri.rfind("fifo://", 0) == 0 ? uri.substr(7) : uri;
  keep = UniqueFd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (!keep) return fail(Errc::kUnavailable, "open " + path + ": " + std::strerror(errno));
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return fail(Errc::kUnavailable, "open " + path + ": " + std::strerror(errno));
  return UniqueFd(fd);
}

}  // namespace

// One process of the task: the container's init (exec_id empty) or an exec.
struct TaskService::Proc {
  std::string exec_id;
  std::string stdin_path;
  std::string stdout_path;
  std::string stderr_path;
  bool terminal = false;
  std::string process_json;  // exec: the OCI process the agent runs
  cpb::Status status = cpb::CREATED;
  bool starting = false;
  uint32_t pid = 0;
  uint32_t exit_status = 0;
  cpb::Timestamp exited_at;
  std::unique_ptr<runtime::ProcessStdio> output;
  std::unique_ptr<runtime::ProcessStdio> input;
  UniqueFd stdout_fd, stderr_fd, stdout_keep, stderr_keep;
  std::vector<Responder> waiters;
  std::thread stdin_opener;
  std::atomic<bool> exiting{false};
  std::thread watcher;  // exec: waits for its exit (joined by watchInit or the destructor)

  Proc() = default;
  Proc(const Proc&) = delete;
  Proc& operator=(const Proc&) = delete;
  ~Proc() {
    if (stdin_opener.joinable()) stdin_opener.join();
    if (watcher.joinable()) watcher.join();
  }

  // Opens containerd's output FIFOs and starts forwarding the process's output, and its stdin
  // from a helper thread: containerd opens its end asynchronously and may never do so, so a
  // blocking open here would hang Start (finishOutput unblocks it).
  Result<void> startStdio(runtime::AgentClient& agent, const std::string& container_id) {
    NV_ASSIGN_OR_RETURN(stdout_fd, openOutput(stdout_path, stdout_keep));
    NV_ASSIGN_OR_RETURN(stderr_fd, openOutput(stderr_path, stderr_keep));
    output = std::make_unique<runtime::ProcessStdio>(agent, container_id, exec_id);
    output->start(-1, stdout_fd ? stdout_fd.get() : -1, stderr_fd ? stderr_fd.get() : -1);
    if (!stdin_path.empty()) {
      stdin_opener = std::thread([this, &agent, container_id] {
        int fd = ::open(stdin_path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) return;
        if (exiting) {
          ::close(fd);
          return;
        }
        input = std::make_unique<runtime::ProcessStdio>(agent, container_id, exec_id);
        input->start(fd, -1, -1);
      });
    }
    return {};
  }

  // After the process exited: waits until its output is forwarded, closes the FIFOs and stops
  // the stdin forwarding.
  void finishStdio() {
    if (output) output->drain();
    stdout_fd.reset();
    stderr_fd.reset();
    stdout_keep.reset();
    stderr_keep.reset();
    exiting = true;
    if (stdin_opener.joinable()) {
      // Unblocks the opener if containerd never opened its end.
      UniqueFd unblock(::open(stdin_path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
      stdin_opener.join();
    }
    input.reset();
  }
};

struct TaskService::Task {
  std::string id;
  std::string bundle;
  Proc init;
  std::map<std::string, std::unique_ptr<Proc>> execs;
  bool paused = false;
  bool closing = false;  // the init exited: no new exec may start
  runtime::SandboxConfig sandbox_config;
  // The VM: this task's own (a single container, or a pod's sandbox container), or, for a pod
  // member, its sandbox task's (shared: the VM outlives whichever task goes first).
  std::shared_ptr<runtime::Sandbox> sandbox;
  bool pod_sandbox = false;     // the VM has disk slots for the pod's containers
  std::string pod_id;           // a pod member: the sandbox task's id (empty otherwise)
  std::thread oom_watcher;      // the VM owner's: the guest's OOM events for all its tasks
  bool oom_published = false;  // a /tasks/oom went out for this task
  // The EROFS disk built from this container's own snapshot (its upperdir makes the key
  // unique, so no other task can share it): removed with the task.
  std::string owned_rootfs_image;

  Task() = default;
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task() {
    if (oom_watcher.joinable()) oom_watcher.join();
    execs.clear();
    if (!owned_rootfs_image.empty()) {
      std::error_code ignored;
      std::filesystem::remove(owned_rootfs_image, ignored);
    }
  }

  [[nodiscard]] bool ownsVm() const { return pod_id.empty(); }
  [[nodiscard]] cpb::Status statusOf(const Proc& proc) const {
    return paused && proc.status == cpb::RUNNING ? cpb::PAUSED : proc.status;
  }
};

TaskService::TaskService(TaskServiceOptions options, EventPublisher& events)
    : options_(std::move(options)), events_(events) {}

TaskService::~TaskService() {
  stopping_ = true;
  {
    std::lock_guard lifecycle(lifecycle_mutex_);
    std::lock_guard lock(mutex_);
    for (auto& [id, task] : tasks_) {
      if (task->ownsVm() && task->sandbox && task->init.status == cpb::RUNNING) {
        task->sandbox->vm().kill();
      }
    }
  }
  for (;;) {
    std::vector<std::thread> workers;
    {
      std::lock_guard lock(workers_mutex_);
      workers.swap(workers_);
    }
    if (workers.empty()) break;
    for (auto& t : workers) t.join();
  }
  tasks_.clear();
}

template <class F>
void TaskService::async(F fn) {
  std::lock_guard lock(workers_mutex_);
  workers_.emplace_back(std::move(fn));
}

void TaskService::registerOn(ttrpc::Server& server) {
  auto bind = [&](const char* method, void (TaskService::*fn)(Call, Responder)) {
    server.registerHandler(kTaskService, method, [this, fn](Call call, Responder responder) {
      (this->*fn)(std::move(call), std::move(responder));
    });
  };
  bind("Create", &TaskService::create);
  bind("Start", &TaskService::start);
  bind("State", &TaskService::state);
  bind("Wait", &TaskService::wait);
  bind("Kill", &TaskService::kill);
  bind("Delete", &TaskService::remove);
  bind("Pids", &TaskService::pids);
  bind("Connect", &TaskService::connect);
  bind("Shutdown", &TaskService::shutdown);
  bind("CloseIO", &TaskService::closeIo);
  bind("Exec", &TaskService::exec);
  bind("ResizePty", &TaskService::resizePty);
  bind("Stats", &TaskService::stats);
  bind("Pause", &TaskService::pause);
  bind("Resume", &TaskService::resume);
  bind("Update", &TaskService::update);
  bind("Checkpoint", &TaskService::checkpoint);
}

TaskService::Task* TaskService::findLocked(const std::string& id, const std::string& exec_id,
                                           Responder& responder) {
  auto it = tasks_.find(id);
  if (it == tasks_.end()) {
    responder.fail({StatusCode::kNotFound, "task " + id + " not found"});
    return nullptr;
  }
  if (!exec_id.empty()) {
    responder.fail({StatusCode::kNotFound, "exec " + exec_id + " not found"});
    return nullptr;
  }
  return it->second.get();
}

TaskService::Proc* TaskService::findProcLocked(const std::string& id, const std::string& exec_id,
                                               Responder& responder, Task** task_out) {
  Task* task = findLocked(id, "", responder);
  if (task == nullptr) return nullptr;
  if (task_out != nullptr) *task_out = task;
  if (exec_id.empty()) return &task->init;
  auto it = task->execs.find(exec_id);
  if (it == task->execs.end()) {
    responder.fail({StatusCode::kNotFound, "exec " + exec_id + " not found in task " + id});
    return nullptr;
  }
  return it->second.get();
}

bool TaskService::aliveLocked(const Task* task) const {
  auto it = tasks_.find(task->id);
  return it != tasks_.end() && it->second.get() == task;
}

bool TaskService::runningLocked(const Task* task, Responder& responder, bool paused_ok) {
  if (!aliveLocked(task)) {
    responder.fail({StatusCode::kNotFound, "task not found"});
    return false;
  }
  if (task->init.status != cpb::RUNNING || task->closing || !task->sandbox) {
    responder.fail({StatusCode::kFailedPrecondition, "task " + task->id + " is not running"});
    return false;
  }
  if (task->paused && !paused_ok) {
    responder.fail({StatusCode::kFailedPrecondition,
                    "task " + task->id + " is paused; resume it first"});
    return false;
  }
  return true;
}

void TaskService::create(Call call, Responder responder) {
  cpb::CreateTaskRequest request;
  if (!parse(call, request, responder)) return;
  {
    std::lock_guard lock(mutex_);
    if (tasks_.count(request.id()) != 0 || creating_ids_.count(request.id()) != 0) {
      responder.fail({StatusCode::kAlreadyExists, "task " + request.id() + " already exists"});
      return;
    }
    creating_ids_.insert(request.id());
  }
  async([this, request = std::move(request), responder = std::move(responder)]() mutable {
    auto prepared = [&]() -> Result<std::unique_ptr<Task>> {
      const std::string spec_path = request.bundle() + "/config.json";
      std::ifstream in(spec_path);
      if (!in) return fail(Errc::kNotFound, "cannot read " + spec_path);
      nlohmann::json spec = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
      if (spec.is_discarded()) return fail(Errc::kInvalidArgument, spec_path + " is not JSON");
      const PodRole pod = podRole(spec, request.id());
      std::shared_ptr<runtime::Sandbox> pod_vm;
      uint64_t pod_memory_mib = 0;
      if (pod.member()) {
        std::lock_guard lock(mutex_);
        auto it = tasks_.find(pod.sandbox_id);
        if (it == tasks_.end() || !it->second->pod_sandbox) {
          return fail(Errc::kNotFound, "pod sandbox " + pod.sandbox_id +
                                           " is not served by this shim (start it first)");
        }
        if (!it->second->sandbox || it->second->init.status != cpb::RUNNING) {
          return fail(Errc::kUnavailable, "pod sandbox " + pod.sandbox_id + " is not running");
        }
        pod_vm = it->second->sandbox;
        pod_memory_mib = it->second->sandbox_config.memory_mib;
      }
      std::vector<MountSpec> mounts;
      for (const auto& m : request.rootfs()) {
        mounts.push_back({m.type(), m.source(), {m.options().begin(), m.options().end()}});
      }
      NV_ASSIGN_OR_RETURN(auto dirs, rootfsDirs(mounts, request.bundle(), spec));
      NV_ASSIGN_OR_RETURN(auto process, bundleProcess(spec, request.id(), request.terminal()));
      NV_ASSIGN_OR_RETURN(auto store, images::Store::open(options_.runtime.image_root.string()));
      NV_ASSIGN_OR_RETURN(std::string rootfs,
                          images::rootfsImageFromDirs(store, dirs.lowerdirs, dirs.upperdir));
      auto task = std::make_unique<Task>();
      task->id = request.id();
      task->bundle = request.bundle();
      task->init.stdin_path = request.stdin();
      task->init.stdout_path = request.stdout();
      task->init.stderr_path = request.stderr();
      task->init.terminal = request.terminal();
      if (!dirs.upperdir.empty()) {
        task->owned_rootfs_image = rootfs;
        // `delete` removes it if this shim dies before Delete (shim/daemon.cpp runDelete).
        NV_TRY(writeFileAtomic(request.bundle(), kOwnedRootfsFile, rootfs));
      }
      auto& sb = task->sandbox_config;
      sb.id = sandboxIdFor(request.id());  // short: the VM's socket paths must fit
      sb.container_id = request.id();
      sb.image = "containerd:" + options_.namespace_name;
      sb.command = process.command;
      sb.rootfs_image = rootfs;
      sb.oci_spec = std::move(process.oci_spec);
      sb.hostname = process.hostname;
      sb.auto_remove = true;
      NV_ASSIGN_OR_RETURN(sb.files, bindFileCopies(spec));
      NV_ASSIGN_OR_RETURN(sb.secret_volumes, secretVolumes(spec));
      if (pod.member()) {
        task->pod_id = pod.sandbox_id;
        task->sandbox = std::move(pod_vm);
        sb.memory_mib = pod_memory_mib;
        joinPodNamespaces(spec, sb.oci_spec);
      } else {
        const auto pod_size = podResources(spec);
        const double cpus = pod.sandbox ? pod_size.cpus : process.cpus;
        sb.cpus = cpus > 0 ? static_cast<uint32_t>(std::ceil(cpus)) : options_.runtime.cpus;
        sb.memory_mib = vmMemoryMib(options_.runtime.memory_mib,
                                    pod.sandbox ? pod_size.memory_limit_bytes
                                                : process.memory_limit_bytes);
        NV_ASSIGN_OR_RETURN(sb.disk_limit, diskRateLimit(spec));
        task->pod_sandbox = pod.sandbox;
        if (pod.sandbox) sb.disk_slots = kPodDiskSlots;
      }
      return task;
    }();
    std::lock_guard lock(mutex_);
    creating_ids_.erase(request.id());
    if (!prepared) {
      log::get("shim")->error("create {}: {}", request.id(), prepared.error().message());
      failWith(responder, prepared.error());
      return;
    }
    Task& task = **prepared;
    tasks_[task.id] = std::move(*prepared);
    cpb::TaskCreate event;
    event.set_container_id(task.id);
    event.set_bundle(task.bundle);
    *event.mutable_rootfs() = request.rootfs();
    event.mutable_io()->set_stdin(task.init.stdin_path);
    event.mutable_io()->set_stdout(task.init.stdout_path);
    event.mutable_io()->set_stderr(task.init.stderr_path);
    event.mutable_io()->set_terminal(task.init.terminal);
    events_.publish("/tasks/create", "containerd.events.TaskCreate", event);
    cpb::CreateTaskResponse response;  // pid 0 until started (ctr deletes CREATED tasks only then)
    responder.reply(response.SerializeAsString());
  });
}

void TaskService::start(Call call, Responder responder) {
  cpb::StartRequest request;
  if (!parse(call, request, responder)) return;
  Task* task = nullptr;
  Proc* proc = nullptr;
  {
    std::lock_guard lock(mutex_);
    proc = findProcLocked(request.id(), request.exec_id(), responder, &task);
    if (proc == nullptr) return;
    if (proc->status != cpb::CREATED || proc->starting) {
      responder.fail({StatusCode::kFailedPrecondition,
                      "process " + (request.exec_id().empty() ? task->id : request.exec_id()) +
                          " is not created"});
      return;
    }
    if (!request.exec_id().empty() && !runningLocked(task, responder)) return;
    proc->starting = true;
  }
  if (!request.exec_id().empty()) {
    async([this, task, proc, responder = std::move(responder)]() mutable {
      startExec(task, proc, std::move(responder));
    });
    return;
  }
  async([this, task, responder = std::move(responder)]() mutable {
    auto started = [&]() -> Result<uint32_t> {
      // The secrets' bytes stay in this process only until the agent has them.
      auto wipe = makeScopeGuard([&] { runtime::wipeSecrets(task->sandbox_config.secret_volumes); });
      std::shared_ptr<runtime::Sandbox> sandbox;
      if (task->ownsVm()) {
        NV_ASSIGN_OR_RETURN(sandbox,
                            runtime::Sandbox::start(options_.runtime,
                                                    runtime::StateStore(options_.sandbox_state_dir),
                                                    task->sandbox_config));
      } else {
        sandbox = task->sandbox;  // the pod's VM: this container goes into it
        NV_TRY(sandbox->addContainer({.id = task->id,
                                      .rootfs_image = task->sandbox_config.rootfs_image,
                                      .oci_spec = task->sandbox_config.oci_spec,
                                      .files = task->sandbox_config.files,
                                      .secret_volumes = task->sandbox_config.secret_volumes}));
      }
      if (auto stdio = task->init.startStdio(sandbox->agent(), task->id); !stdio) {
        if (!task->ownsVm()) (void)sandbox->removeContainer(task->id);
        return tl::unexpected(stdio.error());
      }
      // Every task of a VM reports the VMM's pid (as Kata does): its /proc/<pid>/ns paths are
      // real, and containerd's cleanup finds a live process while the VM runs.
      const auto pid = static_cast<uint32_t>(sandbox->vm().vmmPid());
      std::lock_guard lock(mutex_);
      task->sandbox = std::move(sandbox);
      task->init.pid = pid;
      task->init.status = cpb::RUNNING;
      task->init.starting = false;
      cpb::TaskStart event;
      event.set_container_id(task->id);
      event.set_pid(pid);
      events_.publish("/tasks/start", "containerd.events.TaskStart", event);
      return pid;
    }();
    if (!started) {
      log::get("shim")->error("start {}: {}", task->id, started.error().message());
      std::lock_guard lock(mutex_);
      task->init.starting = false;
      task->init.output.reset();
      failWith(responder, started.error());
      return;
    }
    if (task->ownsVm()) {
      // The guest's OOM kills become /tasks/oom events (CRI sets reason OOMKilled from them),
      // for whichever of the VM's tasks the event names.
      runtime::AgentClient& agent = task->sandbox->agent();
      task->oom_watcher = std::thread([this, &agent] {
        for (;;) {
          auto oom = agent.call<nanovisor::agent::v1::GetOOMEventResponse>(
              "GetOOMEvent", nanovisor::agent::v1::GetOOMEventRequest(),
              std::chrono::hours(24 * 365));
          if (!oom) return;  // the agent connection closed: the VM is ending
          std::lock_guard lock(mutex_);
          auto it = tasks_.find(oom->container_id());
          if (it == tasks_.end()) continue;
          it->second->oom_published = true;
          cpb::TaskOOM event;
          event.set_container_id(it->first);
          events_.publish("/tasks/oom", "containerd.events.TaskOOM", event);
        }
      });
    }
    cpb::StartResponse response;
    response.set_pid(*started);
    responder.reply(response.SerializeAsString());
    if (stopping_) {
      std::lock_guard lifecycle(lifecycle_mutex_);
      task->sandbox->vm().kill();
    }
    watchInit(task);
  });
}

void TaskService::startExec(Task* task, Proc* proc, Responder responder) {
  namespace agentpb = nanovisor::agent::v1;
  // Held from the agent call until the watcher exists, so watchInit either sees this exec's
  // watcher or refuses it (closing), never a process nobody waits for.
  std::lock_guard lifecycle(lifecycle_mutex_);
  auto started = [&]() -> Result<uint32_t> {
    {
      std::lock_guard lock(mutex_);
      if (!aliveLocked(task) || task->closing || task->init.status != cpb::RUNNING) {
        return fail(Errc::kNotFound, "task " + task->id + " is not running");
      }
    }
    runtime::AgentClient& agent = task->sandbox->agent();
    agentpb::ExecProcessRequest request;
    request.set_container_id(task->id);
    request.set_exec_id(proc->exec_id);
    request.set_oci_process_json(proc->process_json);
    request.set_tty(proc->terminal);
    NV_ASSIGN_OR_RETURN(auto execd, agent.call<agentpb::ExecProcessResponse>("ExecProcess",
                                                                             request));
    if (auto stdio = proc->startStdio(agent, task->id); !stdio) {
      agentpb::SignalProcessRequest kill;
      kill.set_container_id(task->id);
      kill.set_exec_id(proc->exec_id);
      kill.set_signal(SIGKILL);
      (void)agent.call<agentpb::SignalProcessResponse>("SignalProcess", kill);
      return tl::unexpected(stdio.error());
    }
    return execd.pid();
  }();
  std::lock_guard lock(mutex_);
  proc->starting = false;
  if (!started) {
    log::get("shim")->error("exec {} in {}: {}", proc->exec_id, task->id,
                            started.error().message());
    proc->output.reset();
    failWith(responder, started.error());
    return;
  }
  proc->pid = *started;
  proc->status = cpb::RUNNING;
  cpb::TaskExecStarted event;
  event.set_container_id(task->id);
  event.set_exec_id(proc->exec_id);
  event.set_pid(proc->pid);
  events_.publish("/tasks/exec-started", "containerd.events.TaskExecStarted", event);
  proc->watcher = std::thread([this, task, proc] { watchExec(task, proc); });
  cpb::StartResponse response;
  response.set_pid(proc->pid);
  responder.reply(response.SerializeAsString());
}

void TaskService::watchExec(Task* task, Proc* proc) {
  namespace agentpb = nanovisor::agent::v1;
  agentpb::WaitProcessRequest request;
  request.set_container_id(task->id);
  request.set_exec_id(proc->exec_id);
  auto done = task->sandbox->agent().call<agentpb::WaitProcessResponse>(
      "WaitProcess", request, std::chrono::hours(24 * 365));
  proc->finishStdio();
  uint32_t code = 255;
  if (done) {
    code = static_cast<uint32_t>(done->exit_status());
  } else {
    log::get("shim")->error("exec {} in {}: {}", proc->exec_id, task->id,
                            done.error().message());
  }
  markExited(*task, *proc, code);
}

void TaskService::watchInit(Task* task) {
  namespace agentpb = nanovisor::agent::v1;
  auto status = task->sandbox->waitContainer(task->id);
  task->init.finishStdio();
  // No exec starts from now on; the running ones end with the container (killed if the init's
  // exit did not take them along) and are waited for before the agent connection goes.
  std::vector<std::thread> exec_watchers;
  bool execs_running = false;
  {
    std::lock_guard lifecycle(lifecycle_mutex_);
    std::lock_guard lock(mutex_);
    task->closing = true;
    if (task->paused) {
      // Cannot happen for a paused guest's own exit, but a VM that died while paused can.
      task->paused = false;
    }
    for (auto& [id, proc] : task->execs) {
      if (proc->watcher.joinable()) exec_watchers.push_back(std::move(proc->watcher));
      execs_running = execs_running || proc->status == cpb::RUNNING;
    }
  }
  if (execs_running) {
    agentpb::SignalProcessRequest kill;
    kill.set_container_id(task->id);
    kill.set_signal(SIGKILL);
    kill.set_all(true);
    (void)task->sandbox->agent().call<agentpb::SignalProcessResponse>("SignalProcess", kill);
  }
  for (auto& t : exec_watchers) t.join();
  if (status && *status == 128 + SIGKILL) {
    // The agent notices OOM kills by polling: an init the OOM killer ended may exit before
    // its event is out. Its exit record says so; publish /tasks/oom before /tasks/exit.
    agentpb::WaitProcessRequest again;
    again.set_container_id(task->id);
    auto exit = task->sandbox->agent().call<agentpb::WaitProcessResponse>("WaitProcess", again);
    std::lock_guard lock(mutex_);
    if (exit && exit->oom_killed() && !task->oom_published) {
      task->oom_published = true;
      cpb::TaskOOM event;
      event.set_container_id(task->id);
      events_.publish("/tasks/oom", "containerd.events.TaskOOM", event);
    }
  }
  uint32_t code = 255;
  std::string error;
  if (status) {
    code = static_cast<uint32_t>(*status);
  } else {
    error = status.error().message();
    log::get("shim")->error("task {}: {}", task->id, error);
  }
  if (task->ownsVm()) {
    // The VM goes with its first container: a pod's other containers end with it.
    task->sandbox->agent().close();  // ends the OOM watcher's call
    if (task->oom_watcher.joinable()) task->oom_watcher.join();
    std::lock_guard lifecycle(lifecycle_mutex_);
    task->sandbox->finish(static_cast<int>(code), error);
  } else if (status) {
    // A pod member: its rootfs is unmounted in the guest and its disk slot freed.
    std::lock_guard lifecycle(lifecycle_mutex_);
    if (auto removed = task->sandbox->removeContainer(task->id); !removed) {
      log::get("shim")->warn("removing {} from its pod: {}", task->id, removed.error().message());
    }
  }
  markExited(*task, task->init, code);
}

void TaskService::markExited(const Task& task, Proc& proc, uint32_t exit_status) {
  std::vector<Responder> waiters;
  cpb::WaitResponse response;
  {
    std::lock_guard lock(mutex_);
    proc.status = cpb::STOPPED;
    proc.exit_status = exit_status;
    proc.exited_at = nowTimestamp();
    waiters.swap(proc.waiters);
    cpb::TaskExit event;
    event.set_container_id(task.id);
    event.set_id(proc.exec_id.empty() ? task.id : proc.exec_id);
    event.set_pid(proc.pid);
    event.set_exit_status(exit_status);
    *event.mutable_exited_at() = proc.exited_at;
    events_.publish("/tasks/exit", "containerd.events.TaskExit", event);
    response.set_exit_status(exit_status);
    *response.mutable_exited_at() = proc.exited_at;
  }
  const std::string bytes = response.SerializeAsString();
  for (auto& waiter : waiters) waiter.reply(bytes);
}

void TaskService::state(Call call, Responder responder) {
  cpb::StateRequest request;
  if (!parse(call, request, responder)) return;
  std::lock_guard lock(mutex_);
  Task* found = nullptr;
  Proc* proc = findProcLocked(request.id(), request.exec_id(), responder, &found);
  if (proc == nullptr) return;
  const Task& task = *found;
  cpb::StateResponse response;
  response.set_id(proc->exec_id.empty() ? task.id : proc->exec_id);
  response.set_exec_id(proc->exec_id);
  response.set_bundle(task.bundle);
  response.set_pid(proc->pid);
  response.set_status(task.statusOf(*proc));
  response.set_stdin(proc->stdin_path);
  response.set_stdout(proc->stdout_path);
  response.set_stderr(proc->stderr_path);
  response.set_terminal(proc->terminal);
  if (proc->status == cpb::STOPPED) {
    response.set_exit_status(proc->exit_status);
    *response.mutable_exited_at() = proc->exited_at;
  }
  responder.reply(response.SerializeAsString());
}

void TaskService::wait(Call call, Responder responder) {
  cpb::WaitRequest request;
  if (!parse(call, request, responder)) return;
  std::lock_guard lock(mutex_);
  Proc* proc = findProcLocked(request.id(), request.exec_id(), responder);
  if (proc == nullptr) return;
  if (proc->status == cpb::STOPPED) {
    cpb::WaitResponse response;
    response.set_exit_status(proc->exit_status);
    *response.mutable_exited_at() = proc->exited_at;
    responder.reply(response.SerializeAsString());
    return;
  }
  proc->waiters.push_back(std::move(responder));
}

Result<void> TaskService::resumeLocked(Task* task) {
  {
    std::lock_guard lock(mutex_);
    if (!task->paused) return {};
  }
  NV_TRY(task->sandbox->vm().resume());
  std::lock_guard lock(mutex_);
  task->paused = false;
  cpb::TaskResumed event;
  event.set_container_id(task->id);
  events_.publish("/tasks/resumed", "containerd.events.TaskResumed", event);
  return {};
}

void TaskService::kill(Call call, Responder responder) {
  cpb::KillRequest request;
  if (!parse(call, request, responder)) return;
  const int sig = static_cast<int>(request.signal());
  Task* task = nullptr;
  Proc* proc = nullptr;
  {
    std::lock_guard lock(mutex_);
    proc = findProcLocked(request.id(), request.exec_id(), responder, &task);
    if (proc == nullptr) return;
    if (proc->status == cpb::STOPPED) {
      responder.fail({StatusCode::kNotFound, "process already finished"});
      return;
    }
    if (proc->starting) {
      responder.fail({StatusCode::kFailedPrecondition, "process is starting"});
      return;
    }
  }
  if (proc->status == cpb::CREATED) {
    // Never started: it moves to STOPPED as runc's does, so containerd can delete it.
    markExited(*task, *proc, 128u + static_cast<uint32_t>(sig));
    responder.reply("");
    return;
  }
  async([this, task, proc, request, responder = std::move(responder)]() mutable {
    std::lock_guard lifecycle(lifecycle_mutex_);
    {
      std::lock_guard lock(mutex_);
      if (!aliveLocked(task) || proc->status == cpb::STOPPED || !task->sandbox ||
          task->init.status == cpb::STOPPED) {
        responder.fail({StatusCode::kNotFound, "process already finished"});
        return;
      }
    }
    // A paused guest cannot take a signal: containerd kills paused tasks, so resume first.
    if (auto resumed = resumeLocked(task); !resumed) {
      failWith(responder, resumed.error());
      return;
    }
    nanovisor::agent::v1::SignalProcessRequest signal;
    signal.set_container_id(task->id);
    signal.set_exec_id(request.exec_id());
    signal.set_signal(request.signal());
    signal.set_all(request.all());
    auto sent = task->sandbox->agent().call<nanovisor::agent::v1::SignalProcessResponse>(
        "SignalProcess", signal);
    if (!sent) {
      failWith(responder, sent.error());
      return;
    }
    responder.reply("");
  });
}

void TaskService::remove(Call call, Responder responder) {
  cpb::DeleteRequest request;
  if (!parse(call, request, responder)) return;
  std::unique_ptr<Task> gone_task;
  std::unique_ptr<Proc> gone_exec;
  cpb::DeleteResponse response;
  {
    std::lock_guard lock(mutex_);
    Task* task = nullptr;
    Proc* proc = findProcLocked(request.id(), request.exec_id(), responder, &task);
    if (proc == nullptr) return;
    if (proc->status == cpb::RUNNING || proc->starting) {
      responder.fail({StatusCode::kFailedPrecondition,
                      "process " + (proc->exec_id.empty() ? task->id : proc->exec_id) +
                          " is running; kill it first"});
      return;
    }
    if (proc->status == cpb::CREATED) proc->exited_at = nowTimestamp();
    response.set_pid(proc->pid);
    response.set_exit_status(proc->exit_status);
    *response.mutable_exited_at() = proc->exited_at;
    cpb::TaskDelete event;
    event.set_container_id(task->id);
    event.set_id(proc->exec_id);
    event.set_pid(proc->pid);
    event.set_exit_status(proc->exit_status);
    *event.mutable_exited_at() = proc->exited_at;
    events_.publish("/tasks/delete", "containerd.events.TaskDelete", event);
    if (proc->exec_id.empty()) {
      auto it = tasks_.find(task->id);
      gone_task = std::move(it->second);
      tasks_.erase(it);
    } else {
      auto it = task->execs.find(proc->exec_id);
      gone_exec = std::move(it->second);
      task->execs.erase(it);
    }
  }
  responder.reply(response.SerializeAsString());
  // The sandbox was finished by watchInit (VM stopped, state removed); the objects go on a
  // worker so that the io thread never waits on a join.
  async([gone_task = std::move(gone_task), gone_exec = std::move(gone_exec)]() mutable {
    gone_exec.reset();
    gone_task.reset();
  });
}

void TaskService::pids(Call call, Responder responder) {
  cpb::PidsRequest request;
  if (!parse(call, request, responder)) return;
  Task* task = nullptr;
  {
    std::lock_guard lock(mutex_);
    task = findLocked(request.id(), "", responder);
    if (task == nullptr) return;
    if (task->init.status != cpb::RUNNING) {
      responder.reply(cpb::PidsResponse().SerializeAsString());
      return;
    }
    if (!runningLocked(task, responder)) return;
  }
  async([this, task, responder = std::move(responder)]() mutable {
    std::lock_guard lifecycle(lifecycle_mutex_);
    std::map<uint32_t, std::string> exec_pids;
    {
      std::lock_guard lock(mutex_);
      if (!runningLocked(task, responder)) return;
      for (const auto& [id, proc] : task->execs) {
        if (proc->status == cpb::RUNNING) exec_pids[proc->pid] = id;
      }
    }
    nanovisor::agent::v1::ListProcessesRequest list;
    list.set_container_id(task->id);
    auto listed =
        task->sandbox->agent().call<nanovisor::agent::v1::ListProcessesResponse>("ListProcesses",
                                                                                 list);
    if (!listed) {
      failWith(responder, listed.error());
      return;
    }
    // Guest pids; an exec's own process carries its exec id as runc's shim reports it.
    cpb::PidsResponse response;
    for (uint32_t pid : listed->pids()) {
      auto* info = response.add_processes();
      info->set_pid(pid);
      if (auto it = exec_pids.find(pid); it != exec_pids.end()) {
        cpb::ProcessDetails details;
        details.set_exec_id(it->second);
        info->mutable_info()->set_type_url("containerd.runc.v1.ProcessDetails");
        info->mutable_info()->set_value(details.SerializeAsString());
      }
    }
    responder.reply(response.SerializeAsString());
  });
}

void TaskService::connect(Call call, Responder responder) {
  cpb::ConnectRequest request;
  if (!parse(call, request, responder)) return;
  std::lock_guard lock(mutex_);
  cpb::ConnectResponse response;
  response.set_shim_pid(static_cast<uint32_t>(::getpid()));
  if (auto it = tasks_.find(request.id()); it != tasks_.end()) {
    response.set_task_pid(it->second->init.pid);
  }
  responder.reply(response.SerializeAsString());
}

void TaskService::shutdown(Call call, Responder responder) {
  cpb::ShutdownRequest request;
  if (!parse(call, request, responder)) return;
  bool exit_now = false;
  {
    std::lock_guard lock(mutex_);
    exit_now = tasks_.empty() && creating_ids_.empty();
  }
  responder.reply("");
  if (exit_now && options_.on_shutdown) options_.on_shutdown();
}

void TaskService::closeIo(Call call, Responder responder) {
  cpb::CloseIORequest request;
  if (!parse(call, request, responder)) return;
  std::lock_guard lock(mutex_);
  if (findProcLocked(request.id(), request.exec_id(), responder) == nullptr) return;
  // The process's stdin closes when containerd closes its end of the FIFO (EOF): closing it
  // here could cut input still on its way through the FIFO.
  responder.reply("");
}

void TaskService::exec(Call call, Responder responder) {
  cpb::ExecProcessRequest request;
  if (!parse(call, request, responder)) return;
  std::lock_guard lock(mutex_);
  Task* task = findLocked(request.id(), "", responder);
  if (task == nullptr) return;
  if (request.exec_id().empty()) {
    responder.fail({StatusCode::kInvalidArgument, "exec: an exec id is required"});
    return;
  }
  if (task->execs.count(request.exec_id()) != 0) {
    responder.fail({StatusCode::kAlreadyExists,
                    "exec " + request.exec_id() + " already exists in task " + task->id});
    return;
  }
  if (!runningLocked(task, responder)) return;
  auto process =
      execProcessJson(task->sandbox_config.oci_spec, request.spec().value(), request.terminal());
  if (!process) {
    failWith(responder, process.error());
    return;
  }
  auto proc = std::make_unique<Proc>();
  proc->exec_id = request.exec_id();
  proc->stdin_path = request.stdin();
  proc->stdout_path = request.stdout();
  proc->stderr_path = request.stderr();
  proc->terminal = request.terminal();
  proc->process_json = std::move(*process);
  task->execs.emplace(request.exec_id(), std::move(proc));
  cpb::TaskExecAdded event;
  event.set_container_id(task->id);
  event.set_exec_id(request.exec_id());
  events_.publish("/tasks/exec-added", "containerd.events.TaskExecAdded", event);
  responder.reply("");
}

void TaskService::resizePty(Call call, Responder responder) {
  cpb::ResizePtyRequest request;
  if (!parse(call, request, responder)) return;
  Task* task = nullptr;
  {
    std::lock_guard lock(mutex_);
    Proc* proc = findProcLocked(request.id(), request.exec_id(), responder, &task);
    if (proc == nullptr) return;
    if (!proc->terminal) {
      responder.fail({StatusCode::kFailedPrecondition, "the process has no terminal"});
      return;
    }
    if (proc->status != cpb::RUNNING) {
      responder.fail({StatusCode::kFailedPrecondition, "the process is not running"});
      return;
    }
    if (!runningLocked(task, responder)) return;
  }
  async([this, task, request, responder = std::move(responder)]() mutable {
    std::lock_guard lifecycle(lifecycle_mutex_);
    {
      std::lock_guard lock(mutex_);
      if (!runningLocked(task, responder)) return;
    }
    nanovisor::agent::v1::TtyWinResizeRequest resize;
    resize.set_container_id(task->id);
    resize.set_exec_id(request.exec_id());
    resize.set_rows(request.height());
    resize.set_columns(request.width());
    auto done = task->sandbox->agent().call<nanovisor::agent::v1::TtyWinResizeResponse>(
        "TtyWinResize", resize);
    if (!done) {
      failWith(responder, done.error());
      return;
    }
    responder.reply("");
  });
}

void TaskService::stats(Call call, Responder responder) {
  cpb::StatsRequest request;
  if (!parse(call, request, responder)) return;
  Task* task = nullptr;
  {
    std::lock_guard lock(mutex_);
    task = findLocked(request.id(), "", responder);
    if (task == nullptr || !runningLocked(task, responder)) return;
  }
  async([this, task, responder = std::move(responder)]() mutable {
    std::lock_guard lifecycle(lifecycle_mutex_);
    {
      std::lock_guard lock(mutex_);
      if (!runningLocked(task, responder)) return;
    }
    nanovisor::agent::v1::StatsRequest ask;
    ask.set_container_id(task->id);
    auto got = task->sandbox->agent().call<nanovisor::agent::v1::StatsResponse>("Stats", ask);
    if (!got) {
      failWith(responder, got.error());
      return;
    }
    const uint64_t vm_bytes = task->sandbox_config.memory_mib << 20;
    responder.reply(statsResponse(metricsFromAgent(*got, vm_bytes)).SerializeAsString());
  });
}

void TaskService::pause(Call call, Responder responder) {
  cpb::PauseRequest request;
  if (!parse(call, request, responder)) return;
  Task* task = nullptr;
  {
    std::lock_guard lock(mutex_);
    task = findLocked(request.id(), "", responder);
    if (task == nullptr || !runningLocked(task, responder)) return;
    if (task->pod_sandbox || !task->ownsVm()) {
      responder.fail({StatusCode::kUnimplemented,
                      "nanovisor shim: pausing a pod's container is not supported (the VM is "
                      "shared by the pod)"});
      return;
    }
  }
  async([this, task, responder = std::move(responder)]() mutable {
    std::lock_guard lifecycle(lifecycle_mutex_);
    {
      std::lock_guard lock(mutex_);
      if (!runningLocked(task, responder)) return;
    }
    // The whole VM stops (vCPUs halted by the VMM): every process of the container freezes.
    if (auto paused = task->sandbox->vm().pause(); !paused) {
      failWith(responder, paused.error());
      return;
    }
    {
      std::lock_guard lock(mutex_);
      task->paused = true;
      cpb::TaskPaused event;
      event.set_container_id(task->id);
      events_.publish("/tasks/paused", "containerd.events.TaskPaused", event);
    }
    responder.reply("");
  });
}

void TaskService::resume(Call call, Responder responder) {
  cpb::ResumeRequest request;
  if (!parse(call, request, responder)) return;
  Task* task = nullptr;
  {
    std::lock_guard lock(mutex_);
    task = findLocked(request.id(), "", responder);
    if (task == nullptr || !runningLocked(task, responder, /*paused_ok=*/true)) return;
    if (!task->paused) {
      responder.fail({StatusCode::kFailedPrecondition, "task " + task->id + " is not paused"});
      return;
    }
  }
  async([this, task, responder = std::move(responder)]() mutable {
    std::lock_guard lifecycle(lifecycle_mutex_);
    {
      std::lock_guard lock(mutex_);
      if (!runningLocked(task, responder, /*paused_ok=*/true)) return;
    }
    if (auto resumed = resumeLocked(task); !resumed) {
      failWith(responder, resumed.error());
      return;
    }
    responder.reply("");
  });
}

void TaskService::update(Call call, Responder responder) {
  cpb::UpdateTaskRequest request;
  if (!parse(call, request, responder)) return;
  std::lock_guard lock(mutex_);
  Task* task = findLocked(request.id(), "", responder);
  if (task == nullptr) return;
  auto checked = checkUpdateResources(request.resources().type_url(), request.resources().value());
  if (!checked) {
    failWith(responder, checked.error());
    return;
  }
  responder.reply("");  // nothing to change
}

void TaskService::checkpoint(Call call, Responder responder) {
  cpb::CheckpointTaskRequest request;
  if (!parse(call, request, responder)) return;
  responder.fail({StatusCode::kUnimplemented,
                  "nanovisor shim: Checkpoint is not supported (no VM or container snapshot "
                  "yet)"});
}

}  // namespace nv::shim
