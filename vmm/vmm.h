// SPDX-License-Identifier: Apache-2.0
// Vmm: builds a micro-VM from a VmConfig in a fixed order (memory -> KVM VM with irqchip ->
// devices -> kernel and boot structures -> vCPUs) and runs it until the guest or host stops it.
#pragma once

#include <chrono>
#include <condition_variable>
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

// How the VM ended.
struct VmExit {
  StopReason reason = StopReason::kNone;
  int status = 0;  // debug-exit byte; 0 for reset/shutdown; 1 for errors
  std::string message;
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
  [[nodiscard]] VmExit run();
  // Stops the VM from the host (e.g. API kill) with the given reason.
  void stop(StopReason reason, int status, std::string message);
  void pause();
  void resume();
  // Graceful shutdown request through the i8042 (the guest reboots = VM exit).
  void sendCtrlAltDel();

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
  [[nodiscard]] Result<void> loadKernel(const VmConfig& config, const std::string& cmdline);

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
  std::unique_ptr<DeviceLoop> device_loop_;
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
