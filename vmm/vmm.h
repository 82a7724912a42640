// SPDX-License-Identifier: Apache-2.0
// Vmm: builds a micro-VM from a VmConfig in a fixed order (memory -> KVM VM with irqchip ->
// devices -> kernel and boot structures -> vCPUs) and runs it until the guest or host stops it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/event_fd.h"
#include "common/result.h"
#include "vmm/bus/bus.h"
#include "vmm/config/vm_config.h"
#include "vmm/devices/debug_ports.h"
#include "vmm/devices/i8042.h"
#include "vmm/devices/serial.h"
#include "vmm/devices/virtio/mmio_transport.h"
#include "vmm/kvm/kvm_system.h"
#include "vmm/kvm/kvm_vm.h"
#include "vmm/memory/guest_memory_mmap.h"
#include "vmm/vcpu/vcpu_thread.h"

namespace nv::vmm {

class DeviceLoop;
namespace virtio::block {
class Block;
}  // namespace virtio::block
namespace virtio::rng {
class Rng;
}  // namespace virtio::rng
namespace virtio::net {
class Net;
}  // namespace virtio::net

// How the VM ended.
struct VmExit {
  StopReason reason = StopReason::kNone;
  int status = 0;  // debug-exit byte; 0 for reset/shutdown; 1 for errors
  std::string message;
};

// The guest's vsock context id.
inline constexpr uint64_t kGuestCid = 3;

enum class VmState { kRunning, kPaused, kStopping };

// A disk as the control API describes it.
struct DiskDescription {
  uint32_t index = 0;
  std::string path;
  bool read_only = false;
  uint64_t capacity_sectors = 0;
  std::string id;
};

// Counters for the control API's Stats.
struct VmCounters {
  VmState state = VmState::kRunning;
  std::chrono::microseconds uptime{0};
  std::vector<uint64_t> vcpu_exits;
  struct Disk {
    uint32_t index = 0;
    uint64_t requests = 0, read_bytes = 0, write_bytes = 0, bad_requests = 0, queue_errors = 0,
             media_changes = 0, throttled = 0;
  };
  std::vector<Disk> disks;
  struct Net {
    uint32_t index = 0;
    uint64_t tx_frames = 0, tx_bytes = 0, rx_frames = 0, rx_bytes = 0, tx_dropped = 0,
             rx_dropped = 0, bad_rx_buffers = 0, tap_errors = 0, queue_errors = 0,
             tx_throttled = 0, rx_throttled = 0;
  };
  std::vector<Net> nets;
  uint64_t virtio_violations = 0;
  uint64_t unhandled_accesses = 0;
  uint64_t rng_bytes = 0;
  std::optional<std::chrono::microseconds> boot_time;
};

// Per-thread setup run on each VMM thread before it handles guest input (nanovisor-vmm
// installs its seccomp filters there; in-process tests leave them empty).
struct ThreadHooks {
  std::function<void()> vcpu;     // on each vCPU thread, before its first KVM_RUN
  std::function<void()> devices;  // on the device loop thread, before it runs
  std::function<void()> main;     // on the thread calling run(), once the others are started
};

// One micro-VM. create() on the main thread, then run() blocks until the VM stops; stop(),
// pause(), resume() and sendCtrlAltDel() may be called from any other thread meanwhile.
class Vmm {
 public:
  ~Vmm();
  Vmm(const Vmm&) = delete;
  Vmm& operator=(const Vmm&) = delete;

  // `start` is the process start time the boot timer measures from.
  [[nodiscard]] static Result<std::unique_ptr<Vmm>> create(
      const VmConfig& config,
      std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now());

  // Starts the vCPUs and waits for the VM to stop.
  [[nodiscard]] VmExit run(const ThreadHooks& hooks = {});
  // Stops the VM from the host (e.g. API kill) with the given reason.
  void stop(StopReason reason, int status, std::string message);
  void pause();
  void resume();
  // resume() for the control API (clears the paused state).
  [[nodiscard]] Result<void> resumeChecked();
  // pause(), then waits until every vCPU has left KVM_RUN and parked (or ended).
  [[nodiscard]] Result<void> pauseAndWait(std::chrono::milliseconds timeout);
  // Graceful shutdown request through the i8042 (the guest reboots = VM exit).
  void sendCtrlAltDel();
  // Marks the VM as stopping (control API Shutdown), resumes it so the guest can react, and
  // sends Ctrl-Alt-Del.
  void requestShutdown();
  [[nodiscard]] VmState state();

  // Swaps disk `index`'s backing file and raises its config-change interrupt. Validates the
  // request first (index, path, size, mode); returns the new capacity in sectors.
  [[nodiscard]] Result<uint64_t> replaceDiskMedia(uint32_t index, const std::string& path,
                                                  bool read_only);
  [[nodiscard]] std::vector<DiskDescription> disks();
  [[nodiscard]] VmCounters counters();
  [[nodiscard]] const VmConfig& config() const { return config_; }
  // The cmdline the guest got (with the virtio_mmio.device= entries).
  [[nodiscard]] const std::string& guestCmdline() const { return guest_cmdline_; }
  [[nodiscard]] bool hasRng() const { return rng_ != nullptr; }
  // The MAC address each virtio-net device offers its guest, in config.nets order.
  [[nodiscard]] std::vector<std::string> netMacs() const;
  [[nodiscard]] uint64_t rngBytes();

  [[nodiscard]] const GuestMemory& memory() const { return *memory_; }
  [[nodiscard]] std::vector<BootTimer::Mark> bootMarks() { return boot_timer_->marks(); }
  [[nodiscard]] uint64_t virtioViolations();

 private:
  Vmm() = default;
  [[nodiscard]] Result<void> build(const VmConfig& config,
                                   std::chrono::steady_clock::time_point start);
  [[nodiscard]] Result<void> addVirtioDevice(std::shared_ptr<virtio::VirtioDevice> device,
                                             std::string& cmdline);
  [[nodiscard]] Result<void> addDisks(const VmConfig& config, std::string& cmdline);
  [[nodiscard]] Result<void> addNets(const VmConfig& config, std::string& cmdline);
  [[nodiscard]] Result<void> loadKernel(const VmConfig& config, const std::string& cmdline);

  struct Disk {
    std::shared_ptr<virtio::block::Block> block;
    std::shared_ptr<virtio::MmioTransport> transport;
  };

  // First member, so destroyed last: devices (vsock, net) hold Asio objects of its io_context.
  std::unique_ptr<DeviceLoop> device_loop_;
  VmConfig config_;
  std::string guest_cmdline_;
  std::chrono::steady_clock::time_point start_;
  std::vector<Disk> disks_;
  std::vector<std::shared_ptr<virtio::net::Net>> nets_;
  std::shared_ptr<virtio::rng::Rng> rng_;
  std::mutex state_mutex_;  // serialises pause/resume/shutdown/replace requests
  bool paused_ = false;
  std::atomic<bool> stopping_{false};
  std::optional<kvm::KvmSystem> kvm_;
  std::optional<kvm::KvmVm> vm_;
  std::unique_ptr<GuestMemoryMmap> memory_;
  Bus pio_;
  Bus mmio_;
  std::vector<std::unique_ptr<IrqLine>> irqs_;
  std::shared_ptr<Serial> serial_;
  std::shared_ptr<I8042> i8042_;
  std::shared_ptr<BootTimer> boot_timer_;
  std::vector<std::shared_ptr<virtio::MmioTransport>> transports_;
  std::vector<EventFd> notify_fds_;
  int console_fd_ = -1;
  bool owns_console_fd_ = false;
  uint64_t entry_ = 0;
  bool pvh_ = false;
  std::unique_ptr<ExitHandler> exit_handler_;
  std::vector<std::unique_ptr<VcpuThread>> vcpus_;

  std::mutex mutex_;
  std::condition_variable cv_;
  std::optional<VmExit> exit_;
};

}  // namespace nv::vmm
