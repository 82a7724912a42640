// SPDX-License-Identifier: Apache-2.0
#include "shim/task_service.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <fstream>

#include "common/logging.h"
#include "common/syscall.h"
#include "images/rootfs.h"
#include "images/store.h"
#include "shim/bundle.h"

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

struct TaskService::Task {
  std::string id;
  std::string bundle;
  std::string stdin_path;
  std::string stdout_path;
  std::string stderr_path;
  bool terminal = false;
  cpb::Status status = cpb::CREATED;
  bool starting = false;
  uint32_t pid = 0;
  uint32_t exit_status = 0;
  cpb::Timestamp exited_at;
  runtime::SandboxConfig sandbox_config;
  std::unique_ptr<runtime::Sandbox> sandbox;
  std::unique_ptr<runtime::ProcessStdio> output;
  std::unique_ptr<runtime::ProcessStdio> input;
  UniqueFd stdout_fd, stderr_fd, stdout_keep, stderr_keep;
  std::vector<Responder> waiters;
  std::thread stdin_opener;
  std::atomic<bool> exiting{false};
  // The EROFS disk built from this container's own snapshot (its upperdir makes the key
  // unique, so no other task can share it): removed with the task.
  std::string owned_rootfs_image;

  Task() = default;
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task() {
    if (stdin_opener.joinable()) stdin_opener.join();
    if (!owned_rootfs_image.empty()) {
      std::error_code ignored;
      std::filesystem::remove(owned_rootfs_image, ignored);
    }
  }
};

TaskService::TaskService(TaskServiceOptions options, EventPublisher& events)
    : options_(std::move(options)), events_(events) {}

TaskService::~TaskService() {
  stopping_ = true;
  {
    std::lock_guard lifecycle(lifecycle_mutex_);
    std::lock_guard lock(mutex_);
    if (task_ && task_->sandbox && task_->status == cpb::RUNNING) task_->sandbox->vm().kill();
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
  task_.reset();
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
  for (const char* method :
       {"Exec", "ResizePty", "Pause", "Resume", "Checkpoint", "Update", "Stats"}) {
    server.registerHandler(kTaskService, method, [method](Call, Responder responder) {
      responder.fail({StatusCode::kUnimplemented,
                      std::string("nanovisor shim: ") + method + " is not implemented yet"});
    });
  }
}

TaskService::Task* TaskService::findLocked(const std::string& id, const std::string& exec_id,
                                           Responder& responder) {
  if (!task_ || task_->id != id) {
    responder.fail({StatusCode::kNotFound, "task " + id + " not found"});
    return nullptr;
  }
  if (!exec_id.empty()) {
    responder.fail({StatusCode::kNotFound, "exec " + exec_id + " not found"});
    return nullptr;
  }
  return task_.get();
}

void TaskService::create(Call call, Responder responder) {
  cpb::CreateTaskRequest request;
  if (!parse(call, request, responder)) return;
  {
    std::lock_guard lock(mutex_);
    if (task_ || creating_) {
      responder.fail({StatusCode::kAlreadyExists,
                      "this shim already runs a task; one container per shim for now"});
      return;
    }
    creating_ = true;
  }
  async([this, request = std::move(request), responder = std::move(responder)]() mutable {
    auto prepared = [&]() -> Result<std::unique_ptr<Task>> {
      const std::string spec_path = request.bundle() + "/config.json";
      std::ifstream in(spec_path);
      if (!in) return fail(Errc::kNotFound, "cannot read " + spec_path);
      nlohmann::json spec = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
      if (spec.is_discarded()) return fail(Errc::kInvalidArgument, spec_path + " is not JSON");
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
      task->stdin_path = request.stdin();
      task->stdout_path = request.stdout();
      task->stderr_path = request.stderr();
      task->terminal = request.terminal();
      if (!dirs.upperdir.empty()) task->owned_rootfs_image = rootfs;
      auto& sb = task->sandbox_config;
      sb.id = request.id();
      sb.image = "containerd:" + options_.namespace_name;
      sb.command = process.command;
      sb.rootfs_image = rootfs;
      sb.oci_spec = std::move(process.oci_spec);
      sb.hostname = process.hostname;
      sb.cpus = process.cpus > 0 ? static_cast<uint32_t>(std::ceil(process.cpus))
                                 : options_.runtime.cpus;
      sb.memory_mib = vmMemoryMib(options_.runtime.memory_mib, process.memory_limit_bytes);
      sb.auto_remove = true;
      return task;
    }();
    std::lock_guard lock(mutex_);
    creating_ = false;
    if (!prepared) {
      log::get("shim")->error("create {}: {}", request.id(), prepared.error().message());
      failWith(responder, prepared.error());
      return;
    }
    task_ = std::move(*prepared);
    cpb::TaskCreate event;
    event.set_container_id(task_->id);
    event.set_bundle(task_->bundle);
    *event.mutable_rootfs() = request.rootfs();
    event.mutable_io()->set_stdin(task_->stdin_path);
    event.mutable_io()->set_stdout(task_->stdout_path);
    event.mutable_io()->set_stderr(task_->stderr_path);
    event.mutable_io()->set_terminal(task_->terminal);
    events_.publish("/tasks/create", "containerd.events.TaskCreate", event);
    cpb::CreateTaskResponse response;  // pid 0 until started (ctr deletes CREATED tasks only then)
    responder.reply(response.SerializeAsString());
  });
}

void TaskService::start(Call call, Responder responder) {
  cpb::StartRequest request;
  if (!parse(call, request, responder)) return;
  Task* task = nullptr;
  {
    std::lock_guard lock(mutex_);
    task = findLocked(request.id(), request.exec_id(), responder);
    if (task == nullptr) return;
    if (task->status != cpb::CREATED || task->starting) {
      responder.fail({StatusCode::kFailedPrecondition, "task " + task->id + " is not created"});
      return;
    }
    task->starting = true;
  }
  async([this, task, responder = std::move(responder)]() mutable {
    auto started = [&]() -> Result<uint32_t> {
      NV_ASSIGN_OR_RETURN(auto sandbox,
                          runtime::Sandbox::start(options_.runtime,
                                                  runtime::StateStore(options_.sandbox_state_dir),
                                                  task->sandbox_config));
      NV_ASSIGN_OR_RETURN(task->stdout_fd, openOutput(task->stdout_path, task->stdout_keep));
      NV_ASSIGN_OR_RETURN(task->stderr_fd, openOutput(task->stderr_path, task->stderr_keep));
      task->output = std::make_unique<runtime::ProcessStdio>(sandbox->agent(), task->id, "");
      task->output->start(-1, task->stdout_fd ? task->stdout_fd.get() : -1,
                          task->stderr_fd ? task->stderr_fd.get() : -1);
      if (!task->stdin_path.empty()) {
        // containerd opens its end asynchronously and may never do so: a blocking open here
        // would hang Start, so a helper thread waits for it (watchInit unblocks it).
        runtime::Sandbox* sb = sandbox.get();
        task->stdin_opener = std::thread([task, sb] {
          int fd = ::open(task->stdin_path.c_str(), O_RDONLY | O_CLOEXEC);
          if (fd < 0) return;
          if (task->exiting) {
            ::close(fd);
            return;
          }
          task->input = std::make_unique<runtime::ProcessStdio>(sb->agent(), task->id, "");
          task->input->start(fd, -1, -1);
        });
      }
      const auto pid = static_cast<uint32_t>(sandbox->vm().vmmPid());
      std::lock_guard lock(mutex_);
      task->sandbox = std::move(sandbox);
      task->pid = pid;
      task->status = cpb::RUNNING;
      task->starting = false;
      cpb::TaskStart event;
      event.set_container_id(task->id);
      event.set_pid(pid);
      events_.publish("/tasks/start", "containerd.events.TaskStart", event);
      return pid;
    }();
    if (!started) {
      log::get("shim")->error("start {}: {}", task->id, started.error().message());
      std::lock_guard lock(mutex_);
      task->starting = false;
      task->output.reset();
      failWith(responder, started.error());
      return;
    }
    cpb::StartResponse response;
    response.set_pid(*started);
    responder.reply(response.SerializeAsString());
    if (stopping_) {
      std::lock_guard lifecycle(lifecycle_mutex_);
      task->sandbox->vm().kill();
    }
    watchInit();
  });
}

void TaskService::watchInit() {
  Task* task = nullptr;
  {
    std::lock_guard lock(mutex_);
    task = task_.get();
  }
  auto status = task->sandbox->waitInit();
  task->output->drain();
  task->stdout_fd.reset();
  task->stderr_fd.reset();
  task->stdout_keep.reset();
  task->stderr_keep.reset();
  task->exiting = true;
  if (task->stdin_opener.joinable()) {
    // Unblocks the opener if containerd never opened its end.
    UniqueFd unblock(::open(task->stdin_path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
    task->stdin_opener.join();
  }
  uint32_t code = 255;
  std::string error;
  if (status) {
    code = static_cast<uint32_t>(*status);
  } else {
    error = status.error().message();
    log::get("shim")->error("task {}: {}", task->id, error);
  }
  {
    std::lock_guard lifecycle(lifecycle_mutex_);
    task->input.reset();
    task->sandbox->finish(static_cast<int>(code), error);
  }
  markExited(code);
}

void TaskService::markExited(uint32_t exit_status) {
  std::vector<Responder> waiters;
  cpb::WaitResponse response;
  {
    std::lock_guard lock(mutex_);
    task_->status = cpb::STOPPED;
    task_->exit_status = exit_status;
    task_->exited_at = nowTimestamp();
    waiters.swap(task_->waiters);
    cpb::TaskExit event;
    event.set_container_id(task_->id);
    event.set_id(task_->id);
    event.set_pid(task_->pid);
    event.set_exit_status(exit_status);
    *event.mutable_exited_at() = task_->exited_at;
    events_.publish("/tasks/exit", "containerd.events.TaskExit", event);
    response.set_exit_status(exit_status);
    *response.mutable_exited_at() = task_->exited_at;
  }
  const std::string bytes = response.SerializeAsString();
  for (auto& waiter : waiters) waiter.reply(bytes);
}

void TaskService::state(Call call, Responder responder) {
  cpb::StateRequest request;
  if (!parse(call, request, responder)) return;
  std::lock_guard lock(mutex_);
  Task* task = findLocked(request.id(), request.exec_id(), responder);
  if (task == nullptr) return;
  cpb::StateResponse response;
  response.set_id(task->id);
  response.set_bundle(task->bundle);
  response.set_pid(task->pid);
  response.set_status(task->status);
  response.set_stdin(task->stdin_path);
  response.set_stdout(task->stdout_path);
  response.set_stderr(task->stderr_path);
  response.set_terminal(task->terminal);
  if (task->status == cpb::STOPPED) {
    response.set_exit_status(task->exit_status);
    *response.mutable_exited_at() = task->exited_at;
  }
  responder.reply(response.SerializeAsString());
}

void TaskService::wait(Call call, Responder responder) {
  cpb::WaitRequest request;
  if (!parse(call, request, responder)) return;
  std::lock_guard lock(mutex_);
  Task* task = findLocked(request.id(), request.exec_id(), responder);
  if (task == nullptr) return;
  if (task->status == cpb::STOPPED) {
    cpb::WaitResponse response;
    response.set_exit_status(task->exit_status);
    *response.mutable_exited_at() = task->exited_at;
    responder.reply(response.SerializeAsString());
    return;
  }
  task->waiters.push_back(std::move(responder));
}

void TaskService::kill(Call call, Responder responder) {
  cpb::KillRequest request;
  if (!parse(call, request, responder)) return;
  const int sig = static_cast<int>(request.signal());
  Task* task = nullptr;
  {
    std::lock_guard lock(mutex_);
    task = findLocked(request.id(), request.exec_id(), responder);
    if (task == nullptr) return;
    if (task->status == cpb::STOPPED) {
      responder.fail({StatusCode::kNotFound, "process already finished"});
      return;
    }
    if (task->starting) {
      responder.fail({StatusCode::kFailedPrecondition, "task " + task->id + " is starting"});
      return;
    }
  }
  if (task->status == cpb::CREATED) {
    // Never started: it moves to STOPPED as runc's does, so containerd can delete it.
    markExited(128u + static_cast<uint32_t>(sig));
    responder.reply("");
    return;
  }
  async([this, task, sig, responder = std::move(responder)]() mutable {
    std::lock_guard lifecycle(lifecycle_mutex_);
    {
      std::lock_guard lock(mutex_);
      if (task->status == cpb::STOPPED) {
        responder.fail({StatusCode::kNotFound, "process already finished"});
        return;
      }
    }
    auto sent = task->output->signal(sig);
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
  std::unique_ptr<Task> gone;
  cpb::DeleteResponse response;
  {
    std::lock_guard lock(mutex_);
    Task* task = findLocked(request.id(), request.exec_id(), responder);
    if (task == nullptr) return;
    if (task->status == cpb::RUNNING || task->starting) {
      responder.fail({StatusCode::kFailedPrecondition,
                      "task " + task->id + " is running; kill it first"});
      return;
    }
    if (task->status == cpb::CREATED) task->exited_at = nowTimestamp();
    response.set_pid(task->pid);
    response.set_exit_status(task->exit_status);
    *response.mutable_exited_at() = task->exited_at;
    cpb::TaskDelete event;
    event.set_container_id(task->id);
    event.set_pid(task->pid);
    event.set_exit_status(task->exit_status);
    *event.mutable_exited_at() = task->exited_at;
    events_.publish("/tasks/delete", "containerd.events.TaskDelete", event);
    gone = std::move(task_);
  }
  responder.reply(response.SerializeAsString());
  // The sandbox was finished by watchInit (VM stopped, state removed); the object goes on a
  // worker so that the io thread never waits on a join.
  async([gone = std::move(gone)]() mutable { gone.reset(); });
}

void TaskService::pids(Call call, Responder responder) {
  cpb::PidsRequest request;
  if (!parse(call, request, responder)) return;
  std::lock_guard lock(mutex_);
  Task* task = findLocked(request.id(), "", responder);
  if (task == nullptr) return;
  cpb::PidsResponse response;
  if (task->status == cpb::RUNNING) response.add_processes()->set_pid(task->pid);
  responder.reply(response.SerializeAsString());
}

void TaskService::connect(Call call, Responder responder) {
  cpb::ConnectRequest request;
  if (!parse(call, request, responder)) return;
  std::lock_guard lock(mutex_);
  cpb::ConnectResponse response;
  response.set_shim_pid(static_cast<uint32_t>(::getpid()));
  if (task_ && task_->id == request.id()) response.set_task_pid(task_->pid);
  responder.reply(response.SerializeAsString());
}

void TaskService::shutdown(Call call, Responder responder) {
  cpb::ShutdownRequest request;
  if (!parse(call, request, responder)) return;
  bool exit_now = false;
  {
    std::lock_guard lock(mutex_);
    exit_now = !task_ && !creating_;
  }
  responder.reply("");
  if (exit_now && options_.on_shutdown) options_.on_shutdown();
}

void TaskService::closeIo(Call call, Responder responder) {
  cpb::CloseIORequest request;
  if (!parse(call, request, responder)) return;
  std::lock_guard lock(mutex_);
  if (findLocked(request.id(), request.exec_id(), responder) == nullptr) return;
  // The process's stdin closes when containerd closes its end of the FIFO (EOF).
  responder.reply("");
}

}  // namespace nv::shim
