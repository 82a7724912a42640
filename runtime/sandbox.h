// SPDX-License-Identifier: Apache-2.0
// Sandbox: one micro-VM running one container, from boot to teardown. The CLI's `run` owns
// one in its process; it creates the VM through a driver, connects to the agent, creates and
// starts the container, and on destruction tears everything down (VM, sockets, state dir when
// auto-remove), so nothing is left behind on any path.
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "runtime/agent_client.h"
#include "runtime/agent_proxy.h"
#include "runtime/config.h"
#include "runtime/host_probe.h"
#include "runtime/state.h"
#include "runtime/stdio.h"
#include "runtime/vm.h"

namespace nv::runtime {

// A host directory shared live with the container (virtio-9p, VmSpec::shares) and mounted by
// the agent at `destination`: the container's writes land in host_dir and host changes are
// seen at once; read_only refuses writes in QEMU, the guest mount and the container's bind.
struct VolumeConfig {
  std::filesystem::path host_dir;
  std::string destination;                // absolute path inside the container
  bool read_only = false;
};

// A secret handed to the container at /run/secrets/<name> (guest tmpfs, mode 0400, owned by
// the container's user). Held in memory only: never written to the state dir, logged, or
// shown by inspect.
struct SecretConfig {
  std::string name;                       // a file name: [A-Za-z0-9._-], 1-255, not . or ..
  std::string data;
  uint32_t mode = 0;                      // secret volumes: read bits (0444 at most); 0: 0400
};

// A directory of secrets at `destination` (a Kubernetes secret or projected volume): a guest
// tmpfs of its own, bound read-only, files owned by the container's user; names are relative
// paths. Held in memory only, like SecretConfig.
struct SecretVolumeConfig {
  std::string destination;
  std::vector<SecretConfig> files;
};

// The agent's bounds (agent/secrets.h), checked on the host first for a clearer error.
inline constexpr size_t kMaxSecretBytes = 1 << 20;
inline constexpr size_t kMaxSecretsTotalBytes = 3 << 20;
inline constexpr size_t kMaxSecretFiles = 64;  // a secret volume's files

// Overwrites every secret's bytes, then empties the list (once the agent has them).
void wipeSecrets(std::vector<SecretConfig>& secrets);
void wipeSecrets(std::vector<SecretVolumeConfig>& volumes);

// A small file copied into the container at `destination` (CRI's /etc/hosts, resolv.conf,
// hostname bind mounts): at most 64 KiB, 16 a container.
struct FileConfig {
  std::string destination;
  std::string data;
  bool read_only = false;
};

struct SandboxConfig {
  std::string id;                         // names the state dir and the VM
  std::string container_id;               // the container's id in the agent; empty: id
  std::string image;                      // for ps/inspect
  std::vector<std::string> command;       // for ps/inspect
  std::filesystem::path rootfs_image;     // read-only EROFS image of the container's rootfs
  nlohmann::json oci_spec;
  std::string hostname;
  uint32_t cpus = 1;
  uint64_t memory_mib = 256;
  bool exec_allowed = true;
  bool auto_remove = false;
  uint64_t writable_tmpfs_bytes = 0;      // 0: agent default
  std::vector<VolumeConfig> volumes;      // qemu and libvirt drivers (virtio-9p)
  std::vector<SecretConfig> secrets;
  std::vector<SecretVolumeConfig> secret_volumes;
  std::vector<FileConfig> files;
  uint32_t disk_slots = 0;                // pods: room for that many addContainer rootfs disks
  DiskRateLimit disk_limit;               // each disk's rate limit (VmSpec::disk_limit)
};

// Pods: another container in a running sandbox's VM (addContainer).
struct ContainerConfig {
  std::string id;                         // the container's id in the agent
  std::filesystem::path rootfs_image;     // read-only EROFS image, at most kDiskSlotBytes
  nlohmann::json oci_spec;                // namespaces with a path join the sandbox container's
  std::vector<FileConfig> files;
  std::vector<SecretVolumeConfig> secret_volumes;  // the caller wipes them (wipeSecrets)
};

// A VM's console log is kept within two files of this size (ConsoleLogCap).
inline constexpr uint64_t kConsoleLogMaxBytes = 4 << 20;

// Makes the driver `name` (builtin, qemu, libvirt; not "auto": resolve it first) for this
// host: KVM or TCG, and under TCG the guest clock from the probe's cached TSC frequency.
[[nodiscard]] Result<std::unique_ptr<Driver>> makeDriver(const std::string& name,
                                                         const RuntimeConfig& config,
                                                         const HostCapabilities& caps);

class Sandbox {
 public:
  // Boots the VM and starts the container. On error everything created so far is removed.
  [[nodiscard]] static Result<std::unique_ptr<Sandbox>> start(const RuntimeConfig& config,
                                                              const StateStore& store,
                                                              SandboxConfig sandbox);
  ~Sandbox();
  Sandbox(const Sandbox&) = delete;
  Sandbox& operator=(const Sandbox&) = delete;

  [[nodiscard]] const std::string& id() const { return config_.id; }
  [[nodiscard]] const std::string& containerId() const {
    return config_.container_id.empty() ? config_.id : config_.container_id;
  }
  [[nodiscard]] AgentClient& agent() { return *agent_; }
  [[nodiscard]] Vm& vm() { return *vm_; }

  // Waits for the container's init process; the VM dying first is an error naming why.
  [[nodiscard]] Result<int> waitInit() { return waitContainer(containerId()); }
  // Waits for the init process of `container_id` (this sandbox's or an added one).
  [[nodiscard]] Result<int> waitContainer(const std::string& container_id);

  // Pods: creates and starts a further container in the VM. Its rootfs image goes into a free
  // disk slot (SandboxConfig::disk_slots); the agent joins it to the sandbox container's
  // namespaces as its spec says. On error nothing of it is left in the VM. Thread-safe.
  [[nodiscard]] Result<void> addContainer(const ContainerConfig& container);
  // Pods: removes an added container whose processes have exited (the agent unmounts its
  // rootfs) and frees its disk slot. Thread-safe.
  [[nodiscard]] Result<void> removeContainer(const std::string& container_id);
  // Records the final state and stops the VM (the guest is not asked: it is disposable).
  void finish(int exit_code, const std::string& error = "");

 private:
  // The guest's serial console log; why the VM stopped by itself (a guest panic named from
  // that log, else the VMM's exit), for one-line errors. Only with vm_ set.
  [[nodiscard]] std::filesystem::path consoleLog() const;
  [[nodiscard]] std::string vmStopReason() const;
  Sandbox(RuntimeConfig runtime, StateStore store, SandboxConfig config)
      : runtime_(std::move(runtime)), store_(std::move(store)), config_(std::move(config)) {}
  [[nodiscard]] Result<void> boot();

  RuntimeConfig runtime_;
  StateStore store_;
  SandboxConfig config_;
  SandboxState state_;
  std::unique_ptr<Driver> driver_;
  std::unique_ptr<Vm> vm_;
  std::unique_ptr<ConsoleLogCap> console_cap_;  // destroyed before vm_
  std::shared_ptr<AgentClient> agent_;
  std::unique_ptr<AgentProxy> proxy_;
  std::atomic<bool> finished_{false};
  std::mutex containers_mutex_;
  std::map<std::string, std::string> container_disks_;  // added container id -> slot serial
};

}  // namespace nv::runtime
