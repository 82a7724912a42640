// SPDX-License-Identifier: Apache-2.0
// Host probe: what this machine can run (`nanovisor check`), and which driver `auto` picks.
#pragma once

#include <cstdint>
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
  uint64_t tsc_khz = 0;                // hostTscKhz(), measured once per boot with the rest
};

// Probes KVM once per boot of the host and caches the answer in <state_dir>/host-probe.json.
// The unmodified-guest test runs a tiny guest that takes an exception through its IDT
// (`nanovisor-vmm probe`); without nanovisor-vmm the answer is "no".
[[nodiscard]] HostCapabilities probeHost(const RuntimeConfig& config);

// The driver `hypervisor = auto` resolves to: builtin where KVM runs unmodified guests and
// nanovisor-vmm is installed, else qemu. Explicit choices are returned as they are.
[[nodiscard]] std::string resolveDriver(const RuntimeConfig& config, const HostCapabilities& caps);

// The host's TSC frequency in kHz when the TSC is constant and nonstop (0 otherwise), measured
// once per process against CLOCK_MONOTONIC_RAW (~5 ms). Under TCG a guest reads the host's
// TSC, so `tsc_early_khz=` gives the guest kernel a clocksource it cannot calibrate on its own
// (microvm has no HPET or PM timer): without one it falls back to jiffies and ticks at HZ even
// when idle, which costs an idle TCG sandbox ~2.5x the host CPU (docs/performance.md).
[[nodiscard]] uint64_t hostTscKhz();

// Kernel arguments that give a TCG guest the TSC as its clocksource ("" when the host's TSC
// is not usable for it).
[[nodiscard]] std::string tcgClockCmdline(uint64_t tsc_khz);

// Every check `nanovisor check` prints, with a fix for each failure.
[[nodiscard]] std::vector<CheckItem> hostChecks(const RuntimeConfig& config);

}  // namespace nv::runtime
