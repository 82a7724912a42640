// SPDX-License-Identifier: Apache-2.0
#include "runtime/sandbox.h"

#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <fstream>
#include <thread>

#include "common/logging.h"
#include "runtime/builtin_driver.h"
#include "runtime/host_probe.h"
#include "runtime/libvirt_driver.h"
#include "runtime/qemu_driver.h"
#include "runtime/stdio.h"

namespace nv::runtime {
namespace {

using std::chrono::milliseconds;

constexpr const char* kRootfsSerial = "rootfs";

std::string volumeTag(size_t index) { return "volume" + std::to_string(index); }

int64_t nowUnix() { return static_cast<int64_t>(std::time(nullptr)); }

void addFiles(const std::vector<FileConfig>& files,
              nanovisor::agent::v1::CreateContainerRequest& request) {
  for (const auto& file : files) {
    auto* added = request.add_files();
    added->set_destination(file.destination);
    added->set_data(file.data);
    added->set_readonly(file.read_only);
  }
}

void addSecret(const SecretConfig& secret, nanovisor::agent::v1::Secret& out) {
  out.set_name(secret.name);
  out.set_data(secret.data);
  out.set_mode(secret.mode);
}

void addSecrets(const std::vector<SecretConfig>& secrets,
                const std::vector<SecretVolumeConfig>& volumes,
                nanovisor::agent::v1::CreateContainerRequest& request) {
  for (const auto& secret : secrets) addSecret(secret, *request.add_secrets());
  for (const auto& volume : volumes) {
    auto* added = request.add_secret_volumes();
    added->set_destination(volume.destination);
    for (const auto& file : volume.files) addSecret(file, *added->add_files());
  }
}

// The request held the secrets' bytes: overwrite them before they are freed.
void wipeSecrets(nanovisor::agent::v1::CreateContainerRequest& request) {
  auto wipe = [](std::string& data) { std::fill(data.begin(), data.end(), '\0'); };
  for (auto& secret : *request.mutable_secrets()) wipe(*secret.mutable_data());
  for (auto& volume : *request.mutable_secret_volumes()) {
    for (auto& file : *volume.mutable_files()) wipe(*file.mutable_data());
  }
}

}  // namespace

void wipeSecrets(std::vector<SecretConfig>& secrets) {
  for (auto& secret : secrets) std::fill(secret.data.begin(), secret.data.end(), '\0');
  secrets.clear();
}

void wipeSecrets(std::vector<SecretVolumeConfig>& volumes) {
  for (auto& volume : volumes) wipeSecrets(volume.files);
  volumes.clear();
}

Result<std::unique_ptr<Driver>> makeDriver(const std::string& name, const RuntimeConfig& config,
                                           const HostCapabilities& caps) {
  const Accel accel = caps.kvm_unmodified_guests ? Accel::kKvm : Accel::kTcg;
  const uint64_t tsc_khz = accel == Accel::kTcg ? caps.tsc_khz : 0;
  if (name == "qemu") {
    return std::make_unique<QemuDriver>(
        QemuOptions{.binary = config.qemu_binary, .accel = accel, .jail = config.jail,
                    .cgroup = config.cgroups, .guest_tsc_khz = tsc_khz});
  }
  if (name == "libvirt") {
    return std::make_unique<LibvirtDriver>(
        LibvirtOptions{.uri = config.libvirt_uri, .accel = accel, .guest_tsc_khz = tsc_khz});
  }
  if (name == "builtin") {
    return std::make_unique<BuiltinDriver>(BuiltinOptions{
        .binary = config.vmm_binary, .jail = config.jail, .cgroup = config.cgroups});
  }
  return fail(Errc::kInvalidArgument, "unknown hypervisor driver '" + name + "'");
}

Result<std::unique_ptr<Sandbox>> Sandbox::start(const RuntimeConfig& config,
                                                const StateStore& store, SandboxConfig sandbox) {
  std::unique_ptr<Sandbox> s(new Sandbox(config, store, std::move(sandbox)));
  if (auto booted = s->boot(); !booted) {
    s->finish(-1, booted.error().message());
    return tl::unexpected(booted.error());
  }
  return s;
}

Result<void> Sandbox::boot() {
  HostCapabilities caps = probeHost(runtime_);
  std::string driver_name = resolveDriver(runtime_, caps);
  // The builtin VMM has no virtio-9p: `auto` takes qemu for volumes.
  if (driver_name == "builtin" && runtime_.hypervisor == "auto" && !config_.volumes.empty()) {
    driver_name = "qemu";
  }
  NV_ASSIGN_OR_RETURN(driver_, makeDriver(driver_name, runtime_, caps));
  NV_ASSIGN_OR_RETURN(auto dir, store_.create(config_.id));

  state_.id = config_.id;
  state_.image = config_.image;
  state_.command = config_.command;
  state_.status = "creating";
  state_.driver = driver_name;
  state_.owner_pid = ::getpid();
  state_.cpus = config_.cpus;
  state_.memory_mib = config_.memory_mib;
  state_.disk_bps = formatRateLimit(config_.disk_limit.bytes);
  state_.disk_iops = formatRateLimit(config_.disk_limit.ops);
  state_.auto_remove = config_.auto_remove;
  state_.created_unix = nowUnix();
  NV_TRY(store_.save(state_));

  VmSpec spec;
  spec.id = config_.id;
  spec.dir = dir;
  spec.kernel = runtime_.kernel;
  spec.initramfs = runtime_.initramfs;
  spec.cpus = config_.cpus;
  spec.memory_mib = config_.memory_mib;
  spec.disk_limit = config_.disk_limit;
  spec.disks = {{.path = config_.rootfs_image, .serial = kRootfsSerial, .read_only = true}};
  for (size_t i = 0; i < config_.volumes.size(); ++i) {
    const auto& volume = config_.volumes[i];
    spec.shares.push_back(
        {.host_dir = volume.host_dir, .tag = volumeTag(i), .read_only = volume.read_only});
  }
  if (config_.disk_slots > 0 && driver_name != "qemu") {
    return fail(Errc::kUnsupported, "pods (one VM, several containers) need the qemu driver; "
                                    "the " + driver_name + " driver cannot add disks to a "
                                    "running VM (set driver = \"qemu\" in the config)");
  }
  spec.disk_slots = config_.disk_slots;
  if (!runtime_.log_level.empty()) spec.cmdline = "nanovisor.log=" + runtime_.log_level;
  NV_ASSIGN_OR_RETURN(vm_, driver_->create(spec));
  console_cap_ = std::make_unique<ConsoleLogCap>(consoleLog(), kConsoleLogMaxBytes);
  log::get("runtime")->debug("{}: VMM started (pid {})", config_.id, vm_->vmmPid());
  state_.vmm_pid = vm_->vmmPid();
  NV_TRY(store_.save(state_));

  // CreateSandbox is the first call: it waits in the channel while the guest boots, so the
  // agent deadline covers it (no separate Health round trip before it).
  const auto deadline = std::chrono::steady_clock::now() + milliseconds(runtime_.agent_timeout_ms);
  nanovisor::agent::v1::CreateSandboxRequest create_sandbox;
  create_sandbox.set_sandbox_id(config_.id);
  create_sandbox.set_hostname(config_.hostname);
  create_sandbox.mutable_policy()->set_exec_allowed(config_.exec_allowed);
  auto answered = [&]() -> Result<void> {
    auto agent = AgentClient::connect(vm_->agentSocket(), milliseconds(runtime_.agent_timeout_ms));
    if (!agent) return fail(Errc::kUnavailable, agent.error().message());
    agent_ = std::move(*agent);
    const auto left =
        std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
    NV_TRY(agent_->call<nanovisor::agent::v1::CreateSandboxResponse>(
        "CreateSandbox", create_sandbox, std::max(left, milliseconds(1))));
    return {};
  }();
  if (!answered) {
    if (vm_->wait(milliseconds(0))) {
      return fail(Errc::kUnavailable, "the guest agent did not answer: " + vmStopReason());
    }
    // No connection, no answer in time, or a closed channel; an agent that answered with an
    // error (e.g. a bad hostname) says so itself.
    if (!answered.error().is(Errc::kTimeout) && !answered.error().is(Errc::kUnavailable)) {
      return tl::unexpected(answered.error());
    }
    return fail(Errc::kUnavailable, "the guest agent did not answer: " +
                                        answered.error().message() + " (console log: " +
                                        consoleLog().string() + ")");
  }
  log::get("runtime")->debug("{}: agent answered", config_.id);
  NV_ASSIGN_OR_RETURN(proxy_, AgentProxy::start(dir / "api.sock", agent_));

  // Kept for `exec`, which starts from the container's process settings.
  {
    std::ofstream spec_file(dir / "config.json");
    spec_file << config_.oci_spec.dump(2) << "\n";
  }
  nanovisor::agent::v1::CreateContainerRequest create;
  create.set_container_id(containerId());
  create.set_oci_spec_json(config_.oci_spec.dump());
  auto* layer = create.mutable_rootfs()->add_layers();
  layer->set_serial(kRootfsSerial);
  layer->set_fstype("erofs");
  layer->set_readonly(true);
  layer->set_index(-1);
  create.mutable_rootfs()->mutable_writable()->set_tmpfs_size_bytes(config_.writable_tmpfs_bytes);
  for (size_t i = 0; i < config_.volumes.size(); ++i) {
    auto* volume = create.add_volumes();
    volume->set_share_tag(volumeTag(i));
    volume->set_destination(config_.volumes[i].destination);
    volume->set_readonly(config_.volumes[i].read_only);
  }
  addFiles(config_.files, create);
  addSecrets(config_.secrets, config_.secret_volumes, create);
  auto created =
      agent_->call<nanovisor::agent::v1::CreateContainerResponse>("CreateContainer", create);
  wipeSecrets(create);
  wipeSecrets(config_.secrets);
  wipeSecrets(config_.secret_volumes);
  NV_TRY(created);
  log::get("runtime")->debug("{}: container created", config_.id);

  nanovisor::agent::v1::StartContainerRequest start;
  start.set_container_id(containerId());
  NV_TRY(agent_->call<nanovisor::agent::v1::StartContainerResponse>("StartContainer", start));
  log::get("runtime")->debug("{}: container started", config_.id);
  state_.status = "running";
  NV_TRY(store_.save(state_));
  return {};
}

Result<void> Sandbox::addContainer(const ContainerConfig& container) {
  namespace agentpb = nanovisor::agent::v1;
  if (finished_ || !vm_) return fail(Errc::kUnavailable, "sandbox " + config_.id + " has stopped");
  {
    std::lock_guard lock(containers_mutex_);
    if (container.id == containerId() || container_disks_.count(container.id) != 0) {
      return fail(Errc::kAlreadyExists,
                  "container " + container.id + " already exists in sandbox " + config_.id);
    }
  }
  NV_ASSIGN_OR_RETURN(const std::string serial, vm_->attachDisk(container.rootfs_image));
  auto created = [&]() -> Result<void> {
    agentpb::CreateContainerRequest create;
    create.set_container_id(container.id);
    create.set_oci_spec_json(container.oci_spec.dump());
    create.set_sandbox_container_id(containerId());
    addFiles(container.files, create);
    auto* layer = create.mutable_rootfs()->add_layers();
    layer->set_serial(serial);
    layer->set_fstype("erofs");
    layer->set_readonly(true);
    layer->set_index(-1);
    create.mutable_rootfs()->mutable_writable()->set_tmpfs_size_bytes(
        config_.writable_tmpfs_bytes);
    addSecrets({}, container.secret_volumes, create);
    auto made = agent_->call<agentpb::CreateContainerResponse>("CreateContainer", create);
    wipeSecrets(create);
    NV_TRY(made);
    agentpb::StartContainerRequest start;
    start.set_container_id(container.id);
    if (auto started = agent_->call<agentpb::StartContainerResponse>("StartContainer", start);
        !started) {
      agentpb::RemoveContainerRequest remove;
      remove.set_container_id(container.id);
      remove.set_force(true);
      (void)agent_->call<agentpb::RemoveContainerResponse>("RemoveContainer", remove);
      return tl::unexpected(started.error());
    }
    return {};
  }();
  if (!created) {
    (void)vm_->detachDisk(serial);
    return tl::unexpected(created.error().wrap("container " + container.id));
  }
  std::lock_guard lock(containers_mutex_);
  container_disks_[container.id] = serial;
  return {};
}

Result<void> Sandbox::removeContainer(const std::string& container_id) {
  std::string serial;
  {
    std::lock_guard lock(containers_mutex_);
    auto it = container_disks_.find(container_id);
    if (it == container_disks_.end()) {
      return fail(Errc::kNotFound, "container " + container_id + " was not added to sandbox " +
                                       config_.id);
    }
    serial = it->second;
    container_disks_.erase(it);
  }
  nanovisor::agent::v1::RemoveContainerRequest remove;
  remove.set_container_id(container_id);
  remove.set_force(true);
  NV_TRY(agent_->call<nanovisor::agent::v1::RemoveContainerResponse>("RemoveContainer", remove));
  return vm_->detachDisk(serial);
}

Result<int> Sandbox::waitContainer(const std::string& container_id) {
  nanovisor::agent::v1::WaitProcessRequest wait;
  wait.set_container_id(container_id);
  auto done = agent_->call<nanovisor::agent::v1::WaitProcessResponse>(
      "WaitProcess", wait, std::chrono::hours(24 * 365));
  if (!done) {
    if (vm_->wait(milliseconds(2000))) {
      return fail(Errc::kUnavailable, "the sandbox VM stopped: " + vmStopReason());
    }
    return tl::unexpected(done.error());
  }
  return done->exit_status();
}

std::filesystem::path Sandbox::consoleLog() const {
  // qemu keeps its console log beside its sockets (<dir>/vm); builtin (beside its agent
  // bridge, outside the VM dir) and libvirt in <dir>.
  return vm_->agentSocket().parent_path() / "console.log";
}

std::string Sandbox::vmStopReason() const {
  // A guest that panicked (or whose agent, PID 1, died) shuts the VM down cleanly (panic=-1,
  // -no-reboot): the console log says why, the VMM's exit status does not.
  // With --rm the log goes with the sandbox: no path to point at.
  std::string crash = guestCrash(consoleLog());
  std::string reason = crash.empty() ? vm_->exitReason() : crash;
  if (config_.auto_remove) return reason;
  return reason + " (console log: " + consoleLog().string() + ")";
}

void Sandbox::finish(int exit_code, const std::string& error) {
  if (finished_.exchange(true)) return;
  // The agent client stays (closed: calls fail) for pod containers' threads still using it;
  // the VM object stays (killed) for the same reason.
  if (agent_) agent_->close();
  if (proxy_) proxy_->stop();
  proxy_.reset();
  if (vm_) vm_->kill();
  log::get("runtime")->debug("{}: VM stopped", config_.id);
  if (state_.id.empty()) return;  // the state dir was never created
  if (config_.auto_remove) {
    (void)store_.remove(config_.id);
    log::get("runtime")->debug("{}: removed", config_.id);
    return;
  }
  state_.status = error.empty() ? "exited" : "failed";
  state_.exit_code = exit_code;
  state_.error = error;
  state_.finished_unix = nowUnix();
  for (const char* socket : {"agent.sock", "qmp.sock", "api.sock"}) {
    std::error_code ignored;
    std::filesystem::remove(store_.dir(config_.id) / socket, ignored);
  }
  if (auto saved = store_.save(state_); !saved) {
    log::get("runtime")->warn("saving state of {}: {}", config_.id, saved.error().message());
  }
}

Sandbox::~Sandbox() { finish(-1, "interrupted"); }

}  // namespace nv::runtime
