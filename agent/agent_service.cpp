// SPDX-License-Identifier: Apache-2.0
// The agent's API: container lifecycle, processes, streams, stats and events.
#include "agent/agent_service.h"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>

#include "agent/files.h"
#include "agent/secrets.h"
#include "agent/spawn.h"
#include "common/logging.h"

#ifndef NV_AGENT_VERSION
#define NV_AGENT_VERSION "0.0.0"
#endif

namespace nv::agent {
namespace {

constexpr int kSetupTimeoutMs = 30000;
constexpr size_t kMaxOomEvents = 256;
constexpr size_t kMaxContainers = 256;
constexpr size_t kMaxExecs = 1024;

Result<void> checkId(const std::string& id, const char* what) {
  if (id.empty() || id.size() > 64) {
    return fail(Errc::kInvalidArgument, std::string(what) + " must be 1..64 characters");
  }
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.';
    if (!ok) {
      return fail(Errc::kInvalidArgument,
                  std::string(what) + " \"" + id + "\" may only contain [A-Za-z0-9._-]");
    }
  }
  if (id.front() == '.') {
    return fail(Errc::kInvalidArgument, std::string(what) + " must not start with '.'");
  }
  return {};
}

// Turns a sync record from a child into the result of a setup step.
Result<void> checkRecord(const std::string& record, char expected, const std::string& what) {
  if (!record.empty() && record.front() == 'E') {
    return fail(Errc::kInvalidArgument, what + ": " + record.substr(1));
  }
  if (expected == '\0' && record.empty()) {
    return {};
  }
  if (!record.empty() && record.front() == expected) {
    return {};
  }
  return fail(Errc::kInternal, what + ": the container process exited during setup");
}

// Reads the next record that is not a terminal hand-over ("T" + fd), attaching the terminal
// to `process` on the way.
Result<std::string> readRecord(int sync, Process& process) {
  while (true) {
    UniqueFd passed;
    NV_ASSIGN_OR_RETURN(std::string record, readSyncRecord(sync, kSetupTimeoutMs, &passed));
    if (passed) {
      process.attachTerminal(std::move(passed));
    }
    if (record != "T") {
      return record;
    }
  }
}

void removeTree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

}  // namespace

const char* agentVersion() { return NV_AGENT_VERSION; }

AgentService::AgentService(AgentConfig config, Reaper& reaper)
    : config_(std::move(config)), reaper_(reaper), cgroups_(config_.cgroup_root) {
  std::error_code ec;
  std::filesystem::create_directories(config_.state_dir, ec);
  if (!cgroups_.available()) {
    log::get("agent")->warn("no writable cgroup v2 at {}: containers run without limits",
                            config_.cgroup_root);
  }
  oom_thread_ = std::thread([this] { watchOom(); });
}

AgentService::~AgentService() {
  stopping_ = true;
  oom_cv_.notify_all();
  if (oom_thread_.joinable()) {
    oom_thread_.join();
  }
  removeAll();
}

Result<std::shared_ptr<AgentService::Container>> AgentService::findContainer(
    const std::string& id) {
  std::lock_guard l(mutex_);
  auto it = containers_.find(id);
  if (it == containers_.end()) {
    return fail(Errc::kNotFound, "container \"" + id + "\" not found");
  }
  return it->second;
}

Result<std::shared_ptr<Process>> AgentService::findProcess(const std::string& container_id,
                                                           const std::string& exec_id) {
  std::lock_guard l(mutex_);
  auto it = containers_.find(container_id);
  if (it == containers_.end()) {
    return fail(Errc::kNotFound, "container \"" + container_id + "\" not found");
  }
  if (!it->second) {
    return failErrno(EBUSY, "container \"" + container_id + "\" is being created");
  }
  if (exec_id.empty()) {
    return it->second->init;
  }
  auto e = it->second->execs.find(exec_id);
  if (e == it->second->execs.end()) {
    return fail(Errc::kNotFound,
                "exec \"" + exec_id + "\" not found in container \"" + container_id + "\"");
  }
  return e->second;
}

Result<pb::CreateSandboxResponse> AgentService::createSandbox(const pb::CreateSandboxRequest& req) {
  if (req.hostname().size() > 64) {
    return fail(Errc::kInvalidArgument, "hostname longer than 64 bytes");
  }
  for (const auto& option : req.guest_options()) {
    auto eq = option.find('=');
    std::string key = option.substr(0, eq);
    if (eq == std::string::npos || key.empty() || key.find("..") != std::string::npos ||
        key.find('/') != std::string::npos) {
      return fail(Errc::kInvalidArgument, "guest option \"" + option + "\" is not key=value");
    }
  }
  for (const auto& server : req.dns()) {
    if (server.empty() || server.size() > 64 || server.find_first_of(" \n\t") != std::string::npos) {
      return fail(Errc::kInvalidArgument, "bad DNS server \"" + server + "\"");
    }
  }
  std::lock_guard l(mutex_);
  if (!config_.host_mode) {
    // Only in the guest: in host mode these would change the test machine.
    if (!req.hostname().empty() && ::sethostname(req.hostname().data(), req.hostname().size()) < 0) {
      return failErrno("sethostname");
    }
    for (const auto& option : req.guest_options()) {
      auto eq = option.find('=');
      std::string path = "/proc/sys/" + option.substr(0, eq);
      for (auto& c : path) {
        c = c == '.' ? '/' : c;
      }
      UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
      std::string value = option.substr(eq + 1);
      if (!fd || ::write(fd.get(), value.data(), value.size()) < 0) {
        return failErrno("guest option " + option);
      }
    }
  }
  dns_.assign(req.dns().begin(), req.dns().end());
  exec_allowed_ = !req.has_policy() || req.policy().exec_allowed();
  sandbox_created_ = true;
  return pb::CreateSandboxResponse();
}

Result<pb::DestroySandboxResponse> AgentService::destroySandbox(const pb::DestroySandboxRequest&) {
  removeAll();
  std::lock_guard l(mutex_);
  sandbox_created_ = false;
  return pb::DestroySandboxResponse();
}

Result<AgentService::PodJoin> AgentService::podJoin(const Spec& spec,
                                                    const pb::CreateContainerRequest& req) {
  PodJoin join{spec.join_namespace_flags, 0};
  const std::string& sandbox_id = req.sandbox_container_id();
  if (sandbox_id.empty() || sandbox_id == req.container_id()) {
    // The sandbox itself (or a lone container): its network is the VM's.
    join.flags &= ~CLONE_NEWNET;
    if (join.flags != 0) {
      return fail(Errc::kInvalidArgument,
                  "the spec joins namespaces by path, which needs the pod's sandbox_container_id");
    }
    return join;
  }
  if (join.flags == 0) {
    return join;
  }
  NV_ASSIGN_OR_RETURN(auto sandbox, findContainer(sandbox_id));
  if (!sandbox || !sandbox->init || sandbox->init->pid() <= 0 || sandbox->init->exitInfo()) {
    return failErrno(ESRCH, "pod sandbox container \"" + sandbox_id + "\" is not running");
  }
  join.sandbox_pid = sandbox->init->pid();
  return join;
}

Result<void> AgentService::podShm(const Spec& spec, const pb::CreateContainerRequest& req,
                                  const PodJoin& join, Container& container) {
  auto wanted = std::find_if(spec.mounts.begin(), spec.mounts.end(), [](const MountSpec& m) {
    return m.destination == "/dev/shm" && m.type == "tmpfs";
  });
  if (wanted == spec.mounts.end()) {
    return {};
  }
  std::string dir;
  if ((join.flags & CLONE_NEWIPC) != 0) {
    dir = config_.state_dir + "/" + req.sandbox_container_id() + "/shm";  // checked by podJoin
    if (::access(dir.c_str(), F_OK) != 0) {
      return {};  // the sandbox has no /dev/shm of its own: keep the container's
    }
  } else {
    dir = container.state_dir + "/shm";
    if (::mkdir(dir.c_str(), 0755) < 0) {
      return failErrno("mkdir " + dir);
    }
    if (::mount("shm", dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                "mode=1777,size=65536k") < 0) {
      return failErrno("mount tmpfs on " + dir);
    }
    container.rootfs.mounts.push_back(dir);  // unmounted with the rootfs
  }
  container.rootfs.volumes.push_back({dir, "/dev/shm", false});
  return {};
}

Result<pb::CreateContainerResponse> AgentService::createContainer(
    const pb::CreateContainerRequest& req) {
  NV_TRY(checkId(req.container_id(), "container id"));
  NV_ASSIGN_OR_RETURN(Spec spec, parseSpec(req.oci_spec_json()));
  NV_TRY(validateSecrets(req.secrets()));
  NV_TRY(validateSecretVolumes(req.secret_volumes(), req.secrets()));
  NV_TRY(validateFiles(req.files()));
  NV_ASSIGN_OR_RETURN(const PodJoin join, podJoin(spec, req));
  auto container = std::make_shared<Container>();
  container->id = req.container_id();
  container->spec_json = req.oci_spec_json();
  container->spec = spec;
  {
    // Reserve the id so a concurrent create of the same id fails at once.
    std::lock_guard l(mutex_);
    if (containers_.count(req.container_id()) != 0) {
      return fail(Errc::kAlreadyExists, "container \"" + req.container_id() + "\" already exists");
    }
    if (containers_.size() >= kMaxContainers) {
      return fail(Errc::kTooLarge, "too many containers");
    }
    containers_[req.container_id()] = nullptr;
  }
  auto release_id = [&] {
    std::lock_guard l(mutex_);
    containers_.erase(req.container_id());
  };
  container->state_dir = config_.state_dir + "/" + req.container_id();
  if (::mkdir(container->state_dir.c_str(), 0700) < 0) {
    auto err = Error::lastErrno("mkdir " + container->state_dir);
    release_id();
    return Unexpected(err);
  }
  auto undo = [&](const Error& e) {
    if (container->init && container->init->pid() > 0) {
      ::kill(container->init->pid(), SIGKILL);
    }
    Cgroups::killAll(container->cgroup_dir);
    teardownRootfs(container->rootfs);
    if (!container->cgroup_dir.empty()) {
      cgroups_.remove(container->cgroup_dir);
    }
    removeTree(container->state_dir);
    release_id();
    return Unexpected(e);
  };
  log::get("agent")->debug("create container {}: spec checked", req.container_id());
  auto rootfs = prepareRootfs(container->state_dir, req.rootfs(), req.volumes(), config_.host_mode);
  if (!rootfs) {
    return undo(rootfs.error());
  }
  log::get("agent")->debug("create container {}: rootfs mounted", req.container_id());
  container->rootfs = std::move(*rootfs);
  if (req.secrets_size() > 0 || req.secret_volumes_size() > 0) {
    auto owner = secretsOwner(container->rootfs.rootfs, spec.process.user);
    if (!owner) {
      return undo(owner.error().wrap("secrets"));
    }
    // Each set of secrets: a tmpfs of its own, unmounted with the rootfs, bound read-only.
    auto place = [&](const std::string& dir, const auto& files,
                     const std::string& destination) -> Result<void> {
      NV_TRY(writeSecrets(dir, files, owner->first, owner->second));
      container->rootfs.mounts.push_back(dir);
      container->rootfs.volumes.push_back({dir, destination, true});
      return {};
    };
    if (req.secrets_size() > 0) {
      if (auto placed = place(container->state_dir + "/secrets", req.secrets(), kSecretsDestination);
          !placed) {
        return undo(placed.error());
      }
    }
    const std::string volumes_dir = container->state_dir + "/secret-volumes";
    if (req.secret_volumes_size() > 0 && ::mkdir(volumes_dir.c_str(), 0700) != 0) {
      return undo(Error::lastErrno("mkdir " + volumes_dir));
    }
    for (int i = 0; i < req.secret_volumes_size(); ++i) {
      const auto& volume = req.secret_volumes(i);
      if (auto placed = place(volumes_dir + "/" + std::to_string(i), volume.files(),
                              volume.destination());
          !placed) {
        return undo(placed.error().wrap("secret volume " + volume.destination()));
      }
    }
  }
  if (auto shm = podShm(spec, req, join, *container); !shm) {
    return undo(shm.error());
  }
  if (req.files_size() > 0) {
    auto binds = writeFiles(container->state_dir + "/files", req.files());
    if (!binds) {
      return undo(binds.error());
    }
    container->rootfs.volumes.insert(container->rootfs.volumes.end(), binds->begin(), binds->end());
  }
  std::vector<std::string> dns;
  {
    std::lock_guard l(mutex_);
    dns = dns_;
  }
  if (!dns.empty()) {
    std::string resolv;
    for (const auto& server : dns) {
      resolv += "nameserver " + server + "\n";
    }
    std::string path = container->state_dir + "/resolv.conf";
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd || ::write(fd.get(), resolv.data(), resolv.size()) < 0) {
      return undo(Error::lastErrno("write " + path));
    }
    container->rootfs.volumes.push_back({path, "/etc/resolv.conf", true});
  }
  auto cgroup = cgroups_.create(req.container_id(), spec.resources);
  if (!cgroup) {
    return undo(cgroup.error());
  }
  container->cgroup_dir = *cgroup;
  log::get("agent")->debug("create container {}: cgroup made", req.container_id());

  auto stdio = makeStdio(spec.process.terminal);
  if (!stdio) {
    return undo(stdio.error());
  }
  UniqueFd child_in = std::move(stdio->child_in);
  UniqueFd child_out = std::move(stdio->child_out);
  UniqueFd child_err = std::move(stdio->child_err);
  container->init = std::make_shared<Process>("", std::move(*stdio));

  LaunchConfig launch;
  launch.kind = LaunchConfig::Kind::kContainer;
  launch.spec_json = req.oci_spec_json();
  launch.rootfs = container->rootfs.rootfs;
  launch.volumes = container->rootfs.volumes;
  launch.tty = spec.process.terminal;
  std::weak_ptr<Process> weak = container->init;
  Reaper::ExitCallback on_exit = [weak](int status) {
    if (auto p = weak.lock()) {
      p->onExit(status);
    }
  };
  int clone_flags = spec.namespace_flags | CLONE_NEWNS;
  if (join.flags != 0) {
    // A helper joins the sandbox's namespaces and clones the container (child.cpp).
    launch.init_pid = join.sandbox_pid;
    launch.join_flags = join.flags;
    launch.clone_flags = std::exchange(clone_flags, 0);
  }
  auto spawned = spawnChild(
      config_.self_exe, launch, clone_flags, {child_in.get(), child_out.get(), child_err.get()},
      container->cgroup_dir.empty() ? "" : container->cgroup_dir + "/cgroup.procs", reaper_,
      join.flags != 0 ? Reaper::ExitCallback([](int) {}) : on_exit);
  child_in.reset();
  child_out.reset();
  child_err.reset();
  if (!spawned) {
    return undo(spawned.error());
  }
  container->init->setPid(spawned->pid);
  log::get("agent")->debug("create container {}: cloned pid {}", req.container_id(), spawned->pid);
  if (join.flags != 0) {
    auto cloned = readRecord(spawned->sync.get(), *container->init);
    if (!cloned) {
      return undo(cloned.error().wrap("create container " + req.container_id()));
    }
    if (auto ok = checkRecord(*cloned, 'P', "create container " + req.container_id()); !ok) {
      return undo(ok.error());
    }
    const long pid = std::strtol(cloned->c_str() + 1, nullptr, 10);
    if (pid <= 0) {
      return undo(Error(Errc::kInternal, "create container: bad pid report \"" + *cloned + "\""));
    }
    container->init->setPid(static_cast<pid_t>(pid));
    reaper_.watch(static_cast<pid_t>(pid), on_exit);
  }
  auto record = readRecord(spawned->sync.get(), *container->init);
  if (!record) {
    return undo(record.error().wrap("create container " + req.container_id()));
  }
  if (auto ok = checkRecord(*record, 'R', "create container " + req.container_id()); !ok) {
    return undo(ok.error());
  }
  container->start_sync = std::move(spawned->sync);
  pb::CreateContainerResponse resp;
  resp.set_pid(static_cast<uint32_t>(container->init->pid()));
  std::lock_guard l(mutex_);
  containers_[req.container_id()] = container;
  log::get("agent")->info("created container {} (pid {})", req.container_id(),
                          container->init->pid());
  return resp;
}

Result<pb::StartContainerResponse> AgentService::startContainer(
    const pb::StartContainerRequest& req) {
  NV_ASSIGN_OR_RETURN(auto container, findContainer(req.container_id()));
  if (!container) {
    return failErrno(EBUSY, "container \"" + req.container_id() + "\" is being created");
  }
  UniqueFd sync;
  {
    std::lock_guard l(mutex_);
    if (container->started) {
      return failErrno(EBUSY, "container \"" + req.container_id() + "\" already started");
    }
    container->started = true;
    sync = std::move(container->start_sync);
  }
  if (::write(sync.get(), "S", 1) != 1) {
    return failErrno("start container " + req.container_id());
  }
  NV_ASSIGN_OR_RETURN(auto record, readRecord(sync.get(), *container->init));
  NV_TRY(checkRecord(record, '\0', "start container " + req.container_id()));
  return pb::StartContainerResponse();
}

void AgentService::destroyContainer(const std::shared_ptr<Container>& container) {
  std::vector<std::shared_ptr<Process>> processes{container->init};
  {
    std::lock_guard l(mutex_);
    for (auto& [id, p] : container->execs) {
      processes.push_back(p);
    }
    container->start_sync.reset();  // a created, unstarted init exits on EOF
  }
  Cgroups::killAll(container->cgroup_dir);
  for (auto& p : processes) {
    if (!p->exitInfo() && p->pid() > 0) {
      ::kill(p->pid(), SIGKILL);
    }
  }
  for (auto& p : processes) {
    for (int i = 0; i < 500 && !p->exitInfo(); ++i) {
      ::usleep(10000);
    }
    p->cancelStreams();
  }
  teardownRootfs(container->rootfs);
  cgroups_.remove(container->cgroup_dir);
  removeTree(container->state_dir);
}

Result<pb::RemoveContainerResponse> AgentService::removeContainer(
    const pb::RemoveContainerRequest& req) {
  NV_ASSIGN_OR_RETURN(auto container, findContainer(req.container_id()));
  if (!container) {
    return failErrno(EBUSY, "container \"" + req.container_id() + "\" is being created");
  }
  if (container->started && !container->init->exitInfo() && !req.force()) {
    return failErrno(EBUSY, "container \"" + req.container_id() +
                                "\" is running: kill it first or remove with force");
  }
  {
    std::lock_guard l(mutex_);
    containers_.erase(req.container_id());
  }
  destroyContainer(container);
  log::get("agent")->info("removed container {}", req.container_id());
  return pb::RemoveContainerResponse();
}

void AgentService::removeAll() {
  std::map<std::string, std::shared_ptr<Container>> all;
  {
    std::lock_guard l(mutex_);
    for (auto it = containers_.begin(); it != containers_.end();) {
      if (it->second) {
        all.insert(*it);
        it = containers_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& [id, container] : all) {
    destroyContainer(container);
  }
}

Result<pb::ExecProcessResponse> AgentService::execProcess(const pb::ExecProcessRequest& req) {
  if (config_.test_crash_on_exec) {
    log::get("agent")->warn("nanovisor.test_crash=exec: crashing");
    __builtin_trap();
  }
  NV_TRY(checkId(req.exec_id(), "exec id"));
  NV_ASSIGN_OR_RETURN(auto container, findContainer(req.container_id()));
  NV_ASSIGN_OR_RETURN(ProcessSpec process, parseProcess(req.oci_process_json()));
  bool tty = req.tty() || process.terminal;
  {
    std::lock_guard l(mutex_);
    if (!exec_allowed_) {
      return fail(Errc::kPermission, "exec is not allowed by the sandbox policy");
    }
    if (!container || !container->started || container->init->exitInfo()) {
      return failErrno(EBUSY, "container \"" + req.container_id() + "\" is not running");
    }
    if (container->execs.count(req.exec_id()) != 0) {
      return fail(Errc::kAlreadyExists, "exec \"" + req.exec_id() + "\" already exists");
    }
    if (container->execs.size() >= kMaxExecs) {
      // Forget the execs whose clients are done with them (a liveness probe's every few
      // seconds); the others stay for their WaitProcess and output.
      std::erase_if(container->execs, [](const auto& e) { return e.second->collected(); });
    }
    if (container->execs.size() >= kMaxExecs) {
      return fail(Errc::kTooLarge, "too many exec processes: " + std::to_string(kMaxExecs) +
                                       " not yet waited for and read to the end");
    }
  }
  NV_ASSIGN_OR_RETURN(Stdio stdio, makeStdio(tty));
  UniqueFd child_in = std::move(stdio.child_in);
  UniqueFd child_out = std::move(stdio.child_out);
  UniqueFd child_err = std::move(stdio.child_err);
  auto proc = std::make_shared<Process>(req.exec_id(), std::move(stdio));

  LaunchConfig launch;
  launch.kind = LaunchConfig::Kind::kExec;
  launch.spec_json = req.oci_process_json();
  launch.init_pid = container->init->pid();
  launch.cgroup_dir = container->cgroup_dir;
  launch.tty = tty;
  launch.container_spec_json = container->spec_json;
  NV_ASSIGN_OR_RETURN(auto spawned, spawnChild(config_.self_exe, launch, 0,
                                               {child_in.get(), child_out.get(), child_err.get()},
                                               "", reaper_, [](int) {}));
  child_in.reset();
  child_out.reset();
  child_err.reset();
  NV_ASSIGN_OR_RETURN(auto record, readRecord(spawned.sync.get(), *proc));
  NV_TRY(checkRecord(record, 'P', "exec in " + req.container_id()));
  long pid = std::strtol(record.c_str() + 1, nullptr, 10);
  if (pid <= 0) {
    return fail(Errc::kInternal, "exec: bad pid report \"" + record + "\"");
  }
  proc->setPid(static_cast<pid_t>(pid));
  std::weak_ptr<Process> weak = proc;
  reaper_.watch(static_cast<pid_t>(pid), [weak](int status) {
    if (auto p = weak.lock()) {
      p->onExit(status);
    }
  });
  NV_ASSIGN_OR_RETURN(auto exec_record, readRecord(spawned.sync.get(), *proc));
  NV_TRY(checkRecord(exec_record, '\0', "exec in " + req.container_id()));
  {
    std::lock_guard l(mutex_);
    container->execs[req.exec_id()] = proc;
  }
  pb::ExecProcessResponse resp;
  resp.set_pid(static_cast<uint32_t>(pid));
  return resp;
}

Result<pb::SignalProcessResponse> AgentService::signalProcess(const pb::SignalProcessRequest& req) {
  if (req.signal() == 0 || req.signal() >= static_cast<uint32_t>(NSIG)) {
    return fail(Errc::kInvalidArgument, "signal " + std::to_string(req.signal()) + " out of range");
  }
  int sig = static_cast<int>(req.signal());
  if (req.all()) {
    NV_ASSIGN_OR_RETURN(auto container, findContainer(req.container_id()));
    if (!container) {
      return failErrno(EBUSY, "container is being created");
    }
    if (!container->cgroup_dir.empty()) {
      for (pid_t pid : Cgroups::pids(container->cgroup_dir)) {
        ::kill(pid, sig);
      }
      return pb::SignalProcessResponse();
    }
  }
  NV_ASSIGN_OR_RETURN(auto process, findProcess(req.container_id(), req.exec_id()));
  if (!process) {
    return failErrno(EBUSY, "container is being created");
  }
  NV_TRY(process->signal(sig));
  return pb::SignalProcessResponse();
}

Result<pb::WaitProcessResponse> AgentService::waitProcess(const pb::WaitProcessRequest& req) {
  NV_ASSIGN_OR_RETURN(auto container, findContainer(req.container_id()));
  NV_ASSIGN_OR_RETURN(auto process, findProcess(req.container_id(), req.exec_id()));
  if (!process) {
    return failErrno(EBUSY, "container is being created");
  }
  ExitInfo info = process->wait();
  pb::WaitProcessResponse resp;
  resp.set_exit_status(info.exit_status);
  resp.set_exited_at_unix_nanos(info.exited_at_ns);
  resp.set_oom_killed(info.signalled && info.signal == SIGKILL && container &&
                      Cgroups::oomKills(container->cgroup_dir) > 0);
  return resp;
}

Result<pb::WriteStdinResponse> AgentService::writeStdin(const pb::WriteStdinRequest& req) {
  if (req.data().size() > kMaxChunkBytes) {
    return fail(Errc::kTooLarge, "stdin chunk larger than 1 MiB");
  }
  NV_ASSIGN_OR_RETURN(auto process, findProcess(req.container_id(), req.exec_id()));
  if (!process) {
    return failErrno(EBUSY, "container is being created");
  }
  NV_ASSIGN_OR_RETURN(size_t n, process->writeStdin(std::span<const uint8_t>(
                                    reinterpret_cast<const uint8_t*>(req.data().data()),
                                    req.data().size())));
  pb::WriteStdinResponse resp;
  resp.set_bytes_written(static_cast<uint32_t>(n));
  return resp;
}

Result<pb::CloseStdinResponse> AgentService::closeStdin(const pb::CloseStdinRequest& req) {
  NV_ASSIGN_OR_RETURN(auto process, findProcess(req.container_id(), req.exec_id()));
  if (!process) {
    return failErrno(EBUSY, "container is being created");
  }
  process->closeStdin();
  return pb::CloseStdinResponse();
}

Result<pb::ReadStreamResponse> AgentService::readStream(const pb::ReadStreamRequest& req,
                                                        bool stderr_stream) {
  NV_ASSIGN_OR_RETURN(auto process, findProcess(req.container_id(), req.exec_id()));
  if (!process) {
    return failErrno(EBUSY, "container is being created");
  }
  size_t max = req.max_bytes() == 0 || req.max_bytes() > kMaxChunkBytes ? kMaxChunkBytes
                                                                         : req.max_bytes();
  auto result = stderr_stream ? process->readStderr(max) : process->readStdout(max);
  pb::ReadStreamResponse resp;
  resp.set_data(result.data.data(), result.data.size());
  resp.set_eof(result.eof);
  return resp;
}

Result<pb::ReadStreamResponse> AgentService::readStdout(const pb::ReadStreamRequest& req) {
  return readStream(req, false);
}

Result<pb::ReadStreamResponse> AgentService::readStderr(const pb::ReadStreamRequest& req) {
  return readStream(req, true);
}

Result<pb::TtyWinResizeResponse> AgentService::ttyWinResize(const pb::TtyWinResizeRequest& req) {
  if (req.rows() > 0xffff || req.columns() > 0xffff) {
    return fail(Errc::kInvalidArgument, "terminal size out of range");
  }
  NV_ASSIGN_OR_RETURN(auto process, findProcess(req.container_id(), req.exec_id()));
  if (!process) {
    return failErrno(EBUSY, "container is being created");
  }
  NV_TRY(process->resize(static_cast<uint16_t>(req.rows()), static_cast<uint16_t>(req.columns())));
  return pb::TtyWinResizeResponse();
}

Result<pb::StatsResponse> AgentService::stats(const pb::StatsRequest& req) {
  NV_ASSIGN_OR_RETURN(auto container, findContainer(req.container_id()));
  if (!container) {
    return failErrno(EBUSY, "container is being created");
  }
  if (container->cgroup_dir.empty()) {
    return fail(Errc::kUnsupported, "stats need cgroup v2, not available here");
  }
  CgroupStats s = Cgroups::stats(container->cgroup_dir);
  pb::StatsResponse resp;
  resp.mutable_cpu()->set_usage_usec(s.cpu_usage_usec);
  resp.mutable_cpu()->set_user_usec(s.cpu_user_usec);
  resp.mutable_cpu()->set_system_usec(s.cpu_system_usec);
  resp.mutable_memory()->set_usage_bytes(s.memory_current);
  resp.mutable_memory()->set_limit_bytes(s.memory_max);
  resp.mutable_memory()->set_max_usage_bytes(s.memory_peak);
  resp.mutable_memory()->set_oom_kills(s.oom_kills);
  resp.mutable_pids()->set_current(s.pids_current);
  resp.mutable_pids()->set_limit(s.pids_max);
  resp.mutable_io()->set_read_bytes(s.io_read_bytes);
  resp.mutable_io()->set_write_bytes(s.io_write_bytes);
  return resp;
}

void AgentService::watchOom() {
  while (!stopping_) {
    {
      std::unique_lock l(oom_mutex_);
      oom_cv_.wait_for(l, std::chrono::milliseconds(100), [&] { return stopping_.load(); });
    }
    std::vector<std::shared_ptr<Container>> all;
    {
      std::lock_guard l(mutex_);
      for (auto& [id, c] : containers_) {
        if (c && !c->cgroup_dir.empty()) {
          all.push_back(c);
        }
      }
    }
    for (auto& c : all) {
      uint64_t kills = Cgroups::oomKills(c->cgroup_dir);
      bool fresh = false;
      {
        std::lock_guard l(mutex_);
        fresh = kills > c->oom_seen;
        c->oom_seen = kills;
      }
      if (fresh) {
        std::lock_guard l(oom_mutex_);
        oom_events_.push_back(c->id);
        if (oom_events_.size() > kMaxOomEvents) {
          oom_events_.pop_front();
        }
        oom_cv_.notify_all();
      }
    }
  }
}

Result<pb::GetOOMEventResponse> AgentService::getOomEvent(const pb::GetOOMEventRequest&) {
  std::unique_lock l(oom_mutex_);
  oom_cv_.wait(l, [&] { return stopping_ || !oom_events_.empty(); });
  if (oom_events_.empty()) {
    return fail(Errc::kCancelled, "agent is shutting down");
  }
  pb::GetOOMEventResponse resp;
  resp.set_container_id(oom_events_.front());
  oom_events_.pop_front();
  return resp;
}

Result<pb::ListProcessesResponse> AgentService::listProcesses(const pb::ListProcessesRequest& req) {
  NV_ASSIGN_OR_RETURN(auto container, findContainer(req.container_id()));
  if (!container) {
    return failErrno(EBUSY, "container is being created");
  }
  pb::ListProcessesResponse resp;
  if (!container->cgroup_dir.empty()) {
    for (pid_t pid : Cgroups::pids(container->cgroup_dir)) {
      resp.add_pids(static_cast<uint32_t>(pid));
    }
    return resp;
  }
  // Without a cgroup: every process in the container's pid namespace.
  struct stat want {};
  std::string ns = "/proc/" + std::to_string(container->init->pid()) + "/ns/pid";
  if (container->init->exitInfo() || ::stat(ns.c_str(), &want) < 0) {
    return resp;
  }
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) {
    return failErrno("opendir /proc");
  }
  while (dirent* entry = ::readdir(proc)) {
    char* end = nullptr;
    long pid = std::strtol(entry->d_name, &end, 10);
    if (pid <= 0 || *end != '\0') {
      continue;
    }
    struct stat st {};
    std::string path = std::string("/proc/") + entry->d_name + "/ns/pid";
    if (::stat(path.c_str(), &st) == 0 && st.st_ino == want.st_ino && st.st_dev == want.st_dev) {
      resp.add_pids(static_cast<uint32_t>(pid));
    }
  }
  ::closedir(proc);
  return resp;
}

Result<pb::HealthResponse> AgentService::health(const pb::HealthRequest&) {
  pb::HealthResponse resp;
  resp.set_ok(true);
  return resp;
}

Result<pb::VersionResponse> AgentService::version(const pb::VersionRequest&) {
  pb::VersionResponse resp;
  resp.set_agent_version(agentVersion());
  utsname uts {};
  if (::uname(&uts) == 0) {
    resp.set_kernel_release(uts.release);
  }
  return resp;
}

}  // namespace nv::agent
