// SPDX-License-Identifier: Apache-2.0
// I8042: the minimal PS/2 keyboard controller: CPU reset (= VM exit) and Ctrl-Alt-Del injection.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>

#include "vmm/bus/bus_device.h"
#include "vmm/devices/interrupt.h"

namespace nv::vmm {

// Ports 0x60 (data) and 0x64 (status/command), one window at 0x60 of length 5. A write of
// 0xFE (pulse reset line) to 0x64 calls `on_reset`, which stops the VM (Linux `reboot=k`).
// Supports the controller commands Linux uses at probe time (0x20/0x60 command byte,
// 0xD0/0xD1 output port, 0xAA self test, 0xA7/0xA8/0xAD/0xAE enable/disable). Called on vCPU
// threads and the API thread (sendCtrlAltDel); a mutex guards it.
class I8042 final : public BusDevice {
 public:
  static constexpr uint64_t kPortBase = 0x60;
  static constexpr uint64_t kPortLen = 5;
  static constexpr uint32_t kIrq = 1;
  static constexpr uint8_t kCmdResetCpu = 0xFE;

  I8042(std::function<void()> on_reset, IrqLine* irq)
      : on_reset_(std::move(on_reset)), irq_(irq) {}

  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  // Queues the make/break scancodes of Ctrl-Alt-Del (set 2) and raises IRQ 1; the guest's
  // atkbd driver turns it into a reboot request (graceful shutdown).
  void sendCtrlAltDel();

 private:
  void push(uint8_t byte);

  std::mutex mutex_;
  std::function<void()> on_reset_;
  IrqLine* irq_;
  std::deque<uint8_t> output_;
  uint8_t command_byte_ = 0x01;  // keyboard interrupt enabled
  uint8_t pending_command_ = 0;  // a command waiting for its data byte on 0x60
  uint8_t output_port_ = 0x01;
};

}  // namespace nv::vmm
