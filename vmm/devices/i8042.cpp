// SPDX-License-Identifier: Apache-2.0
// Minimal i8042 keyboard controller.
#include "vmm/devices/i8042.h"

namespace nv::vmm {
namespace {
constexpr uint8_t kStatusOutputFull = 0x01;
constexpr uint8_t kStatusSystemFlag = 0x04;
constexpr uint8_t kStatusCommand = 0x08;
constexpr uint8_t kStatusKeyboardUnlocked = 0x10;
constexpr size_t kMaxOutput = 64;
}  // namespace

void I8042::push(uint8_t byte) {
  if (output_.size() < kMaxOutput) {
    output_.push_back(byte);
  }
}

void I8042::read(uint64_t offset, std::span<uint8_t> data) {
  if (data.size() != 1) {
    return;
  }
  std::lock_guard lock(mutex_);
  if (offset == 0) {
    if (!output_.empty()) {
      data[0] = output_.front();
      output_.pop_front();
    }
  } else if (offset == 4) {
    data[0] = static_cast<uint8_t>(kStatusSystemFlag | kStatusKeyboardUnlocked |
                                   (pending_command_ != 0 ? kStatusCommand : 0) |
                                   (output_.empty() ? 0 : kStatusOutputFull));
  }
}

void I8042::write(uint64_t offset, std::span<const uint8_t> data) {
  if (data.size() != 1) {
    return;
  }
  bool reset = false;
  {
    std::lock_guard lock(mutex_);
    uint8_t value = data[0];
    if (offset == 4) {
      pending_command_ = 0;
      switch (value) {
        case 0x20:
          push(command_byte_);
          break;
        case 0x60:
        case 0xD1:
          pending_command_ = value;
          break;
        case 0xD0:
          push(output_port_);
          break;
        case 0xAA:
          push(0x55);  // self test passed
          break;
        case kCmdResetCpu:
          reset = true;
          break;
        default:
          break;  // enable/disable port and the rest: accepted, no effect
      }
    } else if (offset == 0) {
      if (pending_command_ == 0x60) {
        command_byte_ = value;
      } else if (pending_command_ == 0xD1) {
        output_port_ = value;
        reset = (value & 0x01) == 0;  // clearing bit 0 pulses the reset line
      } else {
        push(0xFA);  // ACK any keyboard command
      }
      pending_command_ = 0;
    }
  }
  if (reset && on_reset_) {
    on_reset_();
  }
}

void I8042::sendCtrlAltDel() {
  {
    std::lock_guard lock(mutex_);
    // Ctrl down, Alt down, Del down (E0 71), then the break codes (F0 prefix).
    static constexpr uint8_t kSequence[] = {0x14, 0x11, 0xE0, 0x71, 0xE0, 0xF0,
                                           0x71, 0xF0, 0x11, 0xF0, 0x14};
    for (uint8_t byte : kSequence) {
      push(byte);
    }
  }
  if (irq_ != nullptr) {
    irq_->trigger();
  }
}

}  // namespace nv::vmm
