// SPDX-License-Identifier: Apache-2.0
// The builtin driver: one nanovisor-vmm process per sandbox (vmm/), controlled over its ttrpc
// control socket (proto/vmm_api.proto), run in the VMM jail (runtime/jail.h) and a per-sandbox
// host cgroup (runtime/cgroup.h) like the qemu driver's QEMU. Kernel + initramfs booted
// directly, rootfs disks on virtio-blk (found by serial), the agent over hybrid vsock (port
// 1024, bridged to <dir>/agent.sock), virtio-rng. Files: <dir>/vm holds the VMM's sockets
// (vsock.sock, vmm.sock; owned by the jail's uid, bound at /vm in the jail); the console
// (nanovisor-vmm's stdout) goes to <dir>/console.log and its log (stderr) to <dir>/vmm.log,
// both opened by the driver. Torn down with the API's Shutdown or Kill, SIGKILL as the last
// resort; the VM dir, the jail's mount point and the cgroup go with the Vm object.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

#include "runtime/vm.h"

namespace nv::runtime {

struct BuiltinOptions {
  std::filesystem::path binary = "nanovisor-vmm";
  std::string log_level = "info";  // nanovisor-vmm's --log-level (its log: <dir>/vmm.log)
  // Run nanovisor-vmm in the VMM jail (runtime/jail.h): own namespaces, pivot_root,
  // unprivileged per-sandbox uid/gid, no capabilities. Needs root.
  bool jail = true;
  // Put nanovisor-vmm (all threads) in a per-sandbox host cgroup with memory, pids and cpu
  // limits (runtime/cgroup.h). Hosts without a usable hierarchy get a warning and no cgroup.
  bool cgroup = true;
};

// The guest's agent vsock port (agent/boot_options.h: nanovisor.vsock_port default).
inline constexpr uint32_t kAgentVsockPort = 1024;

// Test hook (vmm/seccomp/filters.h kTestHookEnv): when the process that runs the driver has
// this variable set, the driver passes exactly it on to a jailed nanovisor-vmm, whose
// environment is otherwise PATH only: nothing else of the caller's environment reaches the
// jail. (An unjailed VMM inherits the caller's whole environment.)
inline constexpr const char* kVmmTestHookEnv = "NANOVISOR_VMM_TEST_FORBIDDEN_SYSCALL";

// The full nanovisor-vmm command line for a VM as the VMM sees it (pure; unit-tested): its
// sockets in spec.dir (the VM dir: <dir>/vm, or /vm in the jail), the console on stdout.
[[nodiscard]] std::vector<std::string> builtinArgs(const VmSpec& spec,
                                                   const BuiltinOptions& options);

// Cleans up after a nanovisor-vmm whose owner died without stopping it (a crashed shim or
// supervisor): SIGKILLs `vmm_pid` if it still is a driver-started nanovisor-vmm (its command
// line has the driver's --api-sock), then what reapOrphanedVmm does (runtime/vmm_host.h).
void reapOrphanedBuiltin(const std::filesystem::path& dir, const std::string& id, pid_t vmm_pid);

class BuiltinDriver final : public Driver {
 public:
  explicit BuiltinDriver(BuiltinOptions options) : options_(std::move(options)) {}
  [[nodiscard]] std::string name() const override { return "builtin"; }
  [[nodiscard]] Result<std::unique_ptr<Vm>> create(const VmSpec& spec) override;

 private:
  BuiltinOptions options_;
};

}  // namespace nv::runtime
