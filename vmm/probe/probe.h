// SPDX-License-Identifier: Apache-2.0
// `nanovisor-vmm probe`: can this host's KVM run unmodified guests? A tiny guest loads its own
// IDT, executes ud2 (#UD, a fault the handler steps over) and int3 (#BP, the trap Linux's
// text patching uses), returning from each with iretq, then writes 0x31 to the debug-exit
// port. On a paravirtual KVM such as PVM a non-PVM guest runs in KVM's instruction emulator,
// which cannot emulate int3 in long mode: the VM ends in KVM_EXIT_INTERNAL_ERROR (observed on
// the CI hosts), and a stock Linux guest cannot boot either.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace nv::vmm::probe {

// The probe guest as an ELF64 image (one PT_LOAD at 1 MiB: code, #UD handler, IDTR, IDT).
[[nodiscard]] std::string probeGuestElf();

// Guest-physical addresses inside the probe image (for tests).
inline constexpr uint64_t kProbeEntry = 0x100000;
inline constexpr uint64_t kProbeHandler = 0x100020;
inline constexpr uint64_t kProbeBpHandler = 0x100030;
inline constexpr uint64_t kProbeIdt = 0x100080;
inline constexpr uint8_t kProbeVectorUd = 6;
inline constexpr uint8_t kProbeVectorBp = 3;
inline constexpr uint8_t kProbeHandled = 0x31;

struct ProbeResult {
  bool unmodified_guests = false;
  std::string detail;  // one line: "yes: ..." or "no: ..."
};

// Boots the probe guest on /dev/kvm (bounded by `timeout`) and says what happened.
[[nodiscard]] ProbeResult runProbe(std::chrono::milliseconds timeout);

}  // namespace nv::vmm::probe
