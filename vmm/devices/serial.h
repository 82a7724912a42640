// SPDX-License-Identifier: Apache-2.0
// Serial: a 16550A UART register model (COM1 at 0x3F8, IRQ 4); output goes to a sink callback.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <span>

#include "vmm/bus/bus_device.h"
#include "vmm/devices/interrupt.h"

namespace nv::vmm {

// 16550A registers as Linux's 8250 driver uses them: THR/RBR, IER, IIR/FCR, LCR (DLAB), MCR
// (loopback), LSR, MSR, SCR. No host fds here: bytes the guest transmits go to `sink`, bytes
// for the guest come in through enqueueInput(). Called on vCPU threads (bus) and the host
// input thread; a mutex guards the registers.
class Serial final : public BusDevice {
 public:
  using Sink = std::function<void(std::span<const uint8_t>)>;
  static constexpr uint64_t kPortBase = 0x3F8;
  static constexpr uint64_t kPortLen = 8;
  static constexpr uint32_t kIrq = 4;
  static constexpr size_t kMaxInput = 64 * 1024;  // bytes buffered for the guest, then dropped

  Serial(Sink sink, IrqLine* irq) : sink_(std::move(sink)), irq_(irq) {}

  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  // Queues bytes for the guest to read (console input); drops beyond kMaxInput.
  void enqueueInput(std::span<const uint8_t> bytes);

 private:
  uint8_t readRegister(uint64_t offset);
  void writeRegister(uint64_t offset, uint8_t value);
  uint8_t iir() const;
  uint8_t msr() const;
  void updateInterrupt();

  std::mutex mutex_;
  Sink sink_;
  IrqLine* irq_;
  std::deque<uint8_t> input_;
  uint8_t ier_ = 0;
  uint8_t lcr_ = 0x03;  // 8N1
  uint8_t mcr_ = 0x08;  // OUT2
  uint8_t scr_ = 0;
  uint8_t dll_ = 0x0C;  // 9600 baud
  uint8_t dlm_ = 0;
  bool thr_empty_pending_ = false;
};

}  // namespace nv::vmm
