// SPDX-License-Identifier: Apache-2.0
// Host probe: what this machine can run (`nanovisor check`), and which driver `auto` picks.
#pragma once

#include <string>
#include <vector>

#include "common/result.h"
#include "runtime/config.h"

namespace nv::runtime {

struct CheckItem {
  std::string name;
  bool ok = false;
  bool required = true;   // a failed required check means sandboxes cannot start
  std::string detail;     // what was found
  std::string fix;        // what to do when !ok
};

struct HostCapabilities {
  bool kvm_usable = false;             // /dev/kvm opens read-write
  bool kvm_unmodified_guests = false;  // KVM delivers exceptions through a guest IDT
  std::string kvm_detail;
};

// Probes KVM once per boot of the host and caches the answer in <state_dir>/host-probe.json.
// The unmodified-guest test runs a tiny guest that takes an exception through its IDT
// (`nanovisor-vmm probe`); without nanovisor-vmm the answer is "no".
[[nodiscard]] HostCapabilities probeHost(const RuntimeConfig& config);

// The driver `hypervisor = auto` resolves to: builtin where KVM runs unmodified guests and
// nanovisor-vmm is installed, else qemu. Explicit choices are returned as they are.
[[nodiscard]] std::string resolveDriver(const RuntimeConfig& config, const HostCapabilities& caps);

// Every check `nanovisor check` prints, with a fix for each failure.
[[nodiscard]] std::vector<CheckItem> hostChecks(const RuntimeConfig& config);

}  // namespace nv::runtime
