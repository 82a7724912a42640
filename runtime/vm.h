// SPDX-License-Identifier: Apache-2.0
// The hypervisor driver interface shared by the CLI and the shim: one VM per sandbox, started
// by one of three drivers (builtin nanovisor-vmm, qemu, libvirt). See docs/architecture.md.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/rate_limit.h"
#include "common/result.h"

namespace nv::runtime {

// A disk handed to the guest. The guest finds it by `serial` (/sys/block/vdX/serial).
struct DiskSpec {
  std::filesystem::path path;   // raw image file
  std::string serial;           // ≤ 20 bytes (virtio-blk ID limit), [A-Za-z0-9_-]
  bool read_only = true;
};

// A host directory shared with the guest over virtio-9p (9P2000.L); the guest mounts it by
// `tag`. The VMM serves it live: guest writes land in host_dir, host changes are seen at once.
struct ShareSpec {
  std::filesystem::path host_dir;  // absolute, an existing directory
  std::string tag;                 // the 9p mount tag, ≤ 20 bytes, [A-Za-z0-9_-]
  bool read_only = true;
};

// Everything a driver needs to start a VM. Plain data; validate() checks it.
struct VmSpec {
  std::string id;                       // sandbox id, [A-Za-z0-9_.-], ≤ 64 chars
  std::filesystem::path dir;            // per-sandbox runtime dir (sockets, logs); must exist
  std::filesystem::path kernel;         // vmlinux (qemu microvm, builtin) 
  std::filesystem::path kernel_bzimage; // bzImage (libvirt `pc`); empty: derived from kernel
  std::filesystem::path initramfs;
  std::string cmdline;                  // appended to the driver's own arguments
  uint32_t cpus = 1;
  uint64_t memory_mib = 256;
  std::vector<DiskSpec> disks;
  std::vector<ShareSpec> shares;        // volumes; not every driver has virtio-9p
  // Pods: empty disk slots that attachDisk fills while the VM runs (serials slot0, slot1, ...).
  // The guest sees each as a kDiskSlotBytes disk from boot on.
  uint32_t disk_slots = 0;
  // Rate limit of each disk (and slot) on its own: what the guest can make the host's storage
  // do. Unlimited by default.
  DiskRateLimit disk_limit;

  [[nodiscard]] Result<void> validate() const;
};

struct VmStats {
  uint64_t vmm_rss_bytes = 0;           // resident memory of the VMM process
  uint64_t vmm_cpu_usec = 0;
};

inline constexpr uint32_t kMaxDiskSlots = 16;
inline constexpr uint64_t kDiskSlotBytes = uint64_t{64} << 30;  // guest capacity of a slot

// A running VM. Owned by the process that created it; destroying it kills the VM.
class Vm {
 public:
  virtual ~Vm() = default;
  // Unix socket connected to the guest agent's channel; one host connection at a time.
  [[nodiscard]] virtual std::filesystem::path agentSocket() const = 0;
  // Host pid of the VMM process (QEMU or nanovisor-vmm).
  [[nodiscard]] virtual pid_t vmmPid() const = 0;
  // Pods: puts the read-only disk image `image` (at most kDiskSlotBytes) into a free disk
  // slot of the running VM and returns the serial the guest finds it by. The guest must drop
  // the slot's page cache (BLKFLSBUF) before reading it. Thread-safe.
  [[nodiscard]] virtual Result<std::string> attachDisk(const std::filesystem::path& image) {
    (void)image;
    return fail(Errc::kUnsupported,
                "this hypervisor driver cannot add disks to a running VM (pods need the qemu "
                "driver)");
  }
  // Empties the slot `serial` again (its container is gone). Thread-safe.
  [[nodiscard]] virtual Result<void> detachDisk(const std::string& serial) {
    return fail(Errc::kUnsupported, "no disk slot " + serial + " in this VM");
  }
  // Waits for the VMM to exit by itself (the guest rebooted or crashed). Errc::kTimeout if not.
  [[nodiscard]] virtual Result<void> wait(std::chrono::milliseconds timeout) = 0;
  // Stops the VM now without waiting for the guest; idempotent.
  virtual void kill() = 0;
  [[nodiscard]] virtual Result<VmStats> stats() const = 0;
  // Stops / continues the guest's vCPUs; the VMM process and its devices stay (the shim's
  // Pause/Resume). Drivers that cannot answer kUnsupported.
  [[nodiscard]] virtual Result<void> pause() {
    return fail(Errc::kUnsupported, "this hypervisor driver cannot pause a VM");
  }
  [[nodiscard]] virtual Result<void> resume() {
    return fail(Errc::kUnsupported, "this hypervisor driver cannot resume a VM");
  }
  // Why the VMM ended, for error messages ("qemu exited with status 1: <last log line>").
  [[nodiscard]] virtual std::string exitReason() const = 0;
};

class Driver {
 public:
  virtual ~Driver() = default;
  [[nodiscard]] virtual std::string name() const = 0;
  [[nodiscard]] virtual Result<std::unique_ptr<Vm>> create(const VmSpec& spec) = 0;
};

// Reads a process's resident set and CPU time from /proc.
[[nodiscard]] Result<VmStats> processStats(pid_t pid);

// The last `lines` non-empty lines of a VMM's log file, joined by "; " (for one-line errors).
[[nodiscard]] std::string logTail(const std::filesystem::path& path, size_t lines);

// How a VMM process ended, from its wait status: "qemu exited with status 1", "qemu killed by
// signal 9 (SIGKILL)", and for SIGSYS, which a seccomp filter sends (nanovisor-vmm's own,
// QEMU's -sandbox), "nanovisor-vmm killed by signal 31 (SIGSYS): seccomp violation".
[[nodiscard]] std::string vmmExitDescription(std::string_view program, int wait_status);

// Why the guest stopped, from the end of its serial console log: "the guest kernel panicked:
// <reason>" for the last "Kernel panic - not syncing: <reason>" line, "the guest agent (PID 1)
// died: ..." when the reason is init's death; empty when the log holds no panic. The log is
// written by the guest: only its last 64 KiB are read, and the reason is cut to one line of
// printable ASCII (at most 160 characters).
[[nodiscard]] std::string guestCrash(const std::filesystem::path& console_log);

}  // namespace nv::runtime
