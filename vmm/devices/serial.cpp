// SPDX-License-Identifier: Apache-2.0
// 16550A UART register model.
#include "vmm/devices/serial.h"

namespace nv::vmm {
namespace {
constexpr uint8_t kIerRxAvailable = 0x01;
constexpr uint8_t kIerThrEmpty = 0x02;
constexpr uint8_t kIirNone = 0x01;
constexpr uint8_t kIirThrEmpty = 0x02;
constexpr uint8_t kIirRxAvailable = 0x04;
constexpr uint8_t kIirFifoEnabled = 0xC0;
constexpr uint8_t kLcrDlab = 0x80;
constexpr uint8_t kLsrDataReady = 0x01;
constexpr uint8_t kLsrThrEmpty = 0x20;
constexpr uint8_t kLsrIdle = 0x40;
constexpr uint8_t kMcrLoop = 0x10;
}  // namespace

void Serial::read(uint64_t offset, std::span<uint8_t> data) {
  if (data.size() != 1) {
    return;  // zero-filled by the bus
  }
  std::lock_guard lock(mutex_);
  data[0] = readRegister(offset);
}

void Serial::write(uint64_t offset, std::span<const uint8_t> data) {
  if (data.size() != 1) {
    return;
  }
  uint8_t out = 0;
  bool emit = false;
  {
    std::lock_guard lock(mutex_);
    if (offset == 0 && (lcr_ & kLcrDlab) == 0 && (mcr_ & kMcrLoop) == 0) {
      out = data[0];
      emit = true;
      thr_empty_pending_ = true;
      updateInterrupt();
    } else {
      writeRegister(offset, data[0]);
    }
  }
  if (emit && sink_) {
    sink_(std::span<const uint8_t>(&out, 1));
  }
}

void Serial::enqueueInput(std::span<const uint8_t> bytes) {
  std::lock_guard lock(mutex_);
  for (uint8_t byte : bytes) {
    if (input_.size() >= kMaxInput) {
      break;
    }
    input_.push_back(byte);
  }
  updateInterrupt();
}

uint8_t Serial::iir() const {
  if ((ier_ & kIerRxAvailable) != 0 && !input_.empty()) {
    return kIirRxAvailable | kIirFifoEnabled;
  }
  if ((ier_ & kIerThrEmpty) != 0 && thr_empty_pending_) {
    return kIirThrEmpty | kIirFifoEnabled;
  }
  return kIirNone | kIirFifoEnabled;
}

uint8_t Serial::msr() const {
  if ((mcr_ & kMcrLoop) != 0) {
    // Loopback: DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD (Linux probes this).
    return static_cast<uint8_t>(((mcr_ & 0x01) << 5) | ((mcr_ & 0x02) << 3) |
                                ((mcr_ & 0x04) << 4) | ((mcr_ & 0x08) << 4));
  }
  return 0xB0;  // DCD, DSR, CTS
}

void Serial::updateInterrupt() {
  if ((iir() & kIirNone) == 0 && irq_ != nullptr) {
    irq_->trigger();
  }
}

uint8_t Serial::readRegister(uint64_t offset) {
  bool dlab = (lcr_ & kLcrDlab) != 0;
  switch (offset) {
    case 0:
      if (dlab) {
        return dll_;
      }
      if (input_.empty()) {
        return 0;
      } else {
        uint8_t byte = input_.front();
        input_.pop_front();
        return byte;
      }
    case 1:
      return dlab ? dlm_ : ier_;
    case 2: {
      uint8_t value = iir();
      if ((value & 0x0F) == kIirThrEmpty) {
        thr_empty_pending_ = false;  // reading IIR clears a THRE interrupt
      }
      return value;
    }
    case 3:
      return lcr_;
    case 4:
      return mcr_;
    case 5:
      return static_cast<uint8_t>(kLsrThrEmpty | kLsrIdle | (input_.empty() ? 0 : kLsrDataReady));
    case 6:
      return msr();
    case 7:
      return scr_;
    default:
      return 0;
  }
}

void Serial::writeRegister(uint64_t offset, uint8_t value) {
  bool dlab = (lcr_ & kLcrDlab) != 0;
  switch (offset) {
    case 0:
      if (dlab) {
        dll_ = value;
      } else if ((mcr_ & kMcrLoop) != 0 && input_.size() < kMaxInput) {
        input_.push_back(value);  // loopback: transmit straight into receive
        thr_empty_pending_ = true;
        updateInterrupt();
      }
      break;
    case 1:
      if (dlab) {
        dlm_ = value;
      } else {
        // Enabling THRE interrupts raises one at once (the holding register is empty).
        if ((value & kIerThrEmpty) != 0 && (ier_ & kIerThrEmpty) == 0) {
          thr_empty_pending_ = true;
        }
        ier_ = value & 0x0F;
        updateInterrupt();
      }
      break;
    case 2:
      if ((value & 0x02) != 0) {
        input_.clear();  // FCR: clear receive FIFO
      }
      break;
    case 3:
      lcr_ = value;
      break;
    case 4:
      mcr_ = value & 0x1F;
      break;
    case 7:
      scr_ = value;
      break;
    default:
      break;  // LSR/MSR are read-only
  }
}

}  // namespace nv::vmm
