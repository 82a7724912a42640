// SPDX-License-Identifier: Apache-2.0
// MmioTransport: the virtio-mmio version 2 register interface (virtio 1.2 §4.2.2) in front of
// a VirtioDevice; a pure register state machine with no KVM or fds.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "vmm/bus/bus_device.h"
#include "vmm/devices/virtio/virtio_device.h"

namespace nv::vmm::virtio {

// One 4 KiB virtio-mmio window. Registers are 32-bit (config space any width). The guest is
// hostile: queue sizes must be powers of two <= max, rings aligned guest RAM, status bits
// monotonic, features a subset of what was offered; violations are refused (and counted),
// activation failures set NEEDS_RESET. Called on vCPU threads under the transport mutex.
class MmioTransport final : public BusDevice {
 public:
  static constexpr uint64_t kWindowSize = 0x1000;
  static constexpr uint64_t kQueueNotifyOffset = 0x50;
  static constexpr uint32_t kMagic = 0x74726976;  // "virt"

  MmioTransport(std::shared_ptr<VirtioDevice> device, const GuestMemory& memory, IrqLine* irq);

  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  [[nodiscard]] uint32_t status();
  [[nodiscard]] InterruptState& interrupt() { return interrupt_; }
  // Protocol violations seen (refused writes, bad queue setups, failed activations).
  [[nodiscard]] uint64_t violations();
  // Signals a config change (e.g. disk media replaced).
  void configChanged();
  [[nodiscard]] VirtioDevice& device() { return *device_; }

 private:
  uint32_t readRegister(uint64_t offset);
  void writeRegister(uint64_t offset, uint32_t value);
  void setStatus(uint32_t value);
  void resetLocked();
  Queue* selectedQueue();
  void violation(const char* what);

  std::mutex mutex_;
  std::shared_ptr<VirtioDevice> device_;
  const GuestMemory& memory_;
  InterruptState interrupt_;
  std::vector<Queue> queues_;
  uint32_t status_ = 0;
  uint32_t device_features_sel_ = 0;
  uint32_t driver_features_sel_ = 0;
  uint64_t driver_features_ = 0;
  uint32_t queue_sel_ = 0;
  uint32_t config_generation_ = 0;
  bool activated_ = false;
  uint64_t violations_ = 0;
};

}  // namespace nv::vmm::virtio
