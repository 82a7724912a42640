// SPDX-License-Identifier: Apache-2.0
// The qemu driver: starts qemu-system-x86_64 directly (no daemon) with a QMP socket, direct
// kernel boot, virtio disks, a virtio-serial agent channel on a Unix socket, console to a file.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

#include "runtime/vm.h"
#include "runtime/vmm_host.h"

namespace nv::runtime {

enum class Accel { kTcg, kKvm };

struct QemuOptions {
  std::string binary = "qemu-system-x86_64";
  Accel accel = Accel::kTcg;
  // QEMU's own seccomp sandbox (-sandbox on,...), when this QEMU build supports it.
  bool sandbox = true;
  // Run QEMU in the VMM jail (runtime/jail.h): own namespaces, pivot_root, unprivileged
  // uid/gid, no capabilities. Needs root. Disks cannot be hot-added to a jailed QEMU yet.
  bool jail = true;
  // Put QEMU (all threads) in a per-sandbox host cgroup with memory, pids and cpu limits
  // (runtime/cgroup.h). Hosts without a usable hierarchy get a warning and no cgroup.
  bool cgroup = true;
  // TCG: the host TSC frequency the guest kernel is told (tcgClockCmdline; create() measures
  // it); 0 leaves the guest to calibrate (it falls back to jiffies).
  uint64_t guest_tsc_khz = 0;
};

// Cleans up after a QEMU whose owner died without stopping it (a crashed shim or supervisor):
// SIGKILLs `vmm_pid` if it still is the QEMU of sandbox `id` (its `-name nanovisor-<id>`) and
// whatever is left in its host cgroup (listed in <dir>/vmm-cgroups), then removes that cgroup,
// the jail's mount point and the VM's sockets (reapOrphanedVmm). `dir` is the sandbox dir.
// Idempotent.
void reapOrphanedQemu(const std::filesystem::path& dir, const std::string& id, pid_t vmm_pid);

// The full QEMU command line for a VM (pure; unit-tested).
[[nodiscard]] std::vector<std::string> qemuArgs(const VmSpec& spec, const QemuOptions& options);

// The kernel command line every driver passes before spec.cmdline.
[[nodiscard]] std::string baseKernelCmdline(bool pci, const std::string& channel);

class QemuDriver final : public Driver {
 public:
  explicit QemuDriver(QemuOptions options) : options_(std::move(options)) {}
  [[nodiscard]] std::string name() const override { return "qemu"; }
  [[nodiscard]] Result<std::unique_ptr<Vm>> create(const VmSpec& spec) override;

 private:
  QemuOptions options_;
};

}  // namespace nv::runtime
