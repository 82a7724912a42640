// SPDX-License-Identifier: Apache-2.0
// Sandbox: one micro-VM running one container, from boot to teardown. The CLI's `run` owns
// one in its process; it creates the VM through a driver, connects to the agent, creates and
// starts the container, and on destruction tears everything down (VM, sockets, state dir when
// auto-remove), so nothing is left behind on any path.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "runtime/agent_client.h"
#include "runtime/agent_proxy.h"
#include "runtime/config.h"
#include "runtime/state.h"
#include "runtime/vm.h"

namespace nv::runtime {

// A host directory handed to the container read-only: packed into an EROFS disk in the
// sandbox's directory at start (a copy: later host changes are not seen), attached as another
// virtio-blk disk and mounted by the agent at `destination`.
struct VolumeConfig {
  std::filesystem::path host_dir;
  std::string destination;                // absolute path inside the container
};

// A secret handed to the container at /run/secrets/<name> (guest tmpfs, mode 0400, owned by
// the container's user). Held in memory only: never written to the state dir, logged, or
// shown by inspect.
struct SecretConfig {
  std::string name;                       // a file name: [A-Za-z0-9._-], 1-255, not . or ..
  std::string data;
};

// Packs directory `tree` into a read-only filesystem image `out` (the CLI passes
// images::buildErofs; the runtime does not depend on the image store).
using VolumePacker =
    std::function<Result<void>(const std::string& tree, const std::string& out)>;

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
  std::vector<VolumeConfig> volumes;      // read-only; needs pack_volume
  std::vector<SecretConfig> secrets;
  VolumePacker pack_volume;
};

// Makes the driver `name` (builtin, qemu, libvirt; not "auto": resolve it first).
[[nodiscard]] Result<std::unique_ptr<Driver>> makeDriver(const std::string& name,
                                                         const RuntimeConfig& config,
                                                         bool kvm_unmodified_guests);

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
  [[nodiscard]] Result<int> waitInit();
  // Records the final state and stops the VM (the guest is not asked: it is disposable).
  void finish(int exit_code, const std::string& error = "");

 private:
  Sandbox(RuntimeConfig runtime, StateStore store, SandboxConfig config)
      : runtime_(std::move(runtime)), store_(std::move(store)), config_(std::move(config)) {}
  [[nodiscard]] Result<void> boot();

  RuntimeConfig runtime_;
  StateStore store_;
  SandboxConfig config_;
  SandboxState state_;
  std::unique_ptr<Driver> driver_;
  std::unique_ptr<Vm> vm_;
  std::shared_ptr<AgentClient> agent_;
  std::unique_ptr<AgentProxy> proxy_;
  bool finished_ = false;
};

}  // namespace nv::runtime
