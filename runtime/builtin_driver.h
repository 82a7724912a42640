// SPDX-License-Identifier: Apache-2.0
// The builtin driver: one nanovisor-vmm process per sandbox (vmm/), controlled over its ttrpc
// control socket (proto/vmm_api.proto). Kernel + initramfs booted directly, rootfs disks on
// virtio-blk (found by serial), the agent over hybrid vsock (port 1024, bridged to
// <dir>/agent.sock), console to <dir>/console.log, virtio-rng. Torn down with the API's
// Shutdown or Kill, SIGKILL as the last resort.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "runtime/vm.h"

namespace nv::runtime {

struct BuiltinOptions {
  std::filesystem::path binary = "nanovisor-vmm";
  std::string log_level = "info";  // nanovisor-vmm's --log-level (its log: <dir>/vmm.log)
};

// The guest's agent vsock port (agent/boot_options.h: nanovisor.vsock_port default).
inline constexpr uint32_t kAgentVsockPort = 1024;

// The full nanovisor-vmm command line for a VM (pure; unit-tested).
[[nodiscard]] std::vector<std::string> builtinArgs(const VmSpec& spec,
                                                   const BuiltinOptions& options);

class BuiltinDriver final : public Driver {
 public:
  explicit BuiltinDriver(BuiltinOptions options) : options_(std::move(options)) {}
  [[nodiscard]] std::string name() const override { return "builtin"; }
  [[nodiscard]] Result<std::unique_ptr<Vm>> create(const VmSpec& spec) override;

 private:
  BuiltinOptions options_;
};

}  // namespace nv::runtime
