// SPDX-License-Identifier: Apache-2.0
// virtio-mmio v2 transport register state machine.
#include "vmm/devices/virtio/mmio_transport.h"

#include <cstring>

#include "common/logging.h"

namespace nv::vmm::virtio {
namespace {

enum Register : uint64_t {
  kMagicValue = 0x000,
  kVersion = 0x004,
  kDeviceId = 0x008,
  kVendorId = 0x00C,
  kDeviceFeatures = 0x010,
  kDeviceFeaturesSel = 0x014,
  kDriverFeatures = 0x020,
  kDriverFeaturesSel = 0x024,
  kQueueSel = 0x030,
  kQueueNumMax = 0x034,
  kQueueNum = 0x038,
  kQueueReady = 0x044,
  kQueueNotify = 0x050,
  kInterruptStatus = 0x060,
  kInterruptAck = 0x064,
  kStatus = 0x070,
  kQueueDescLow = 0x080,
  kQueueDescHigh = 0x084,
  kQueueDriverLow = 0x090,
  kQueueDriverHigh = 0x094,
  kQueueDeviceLow = 0x0A0,
  kQueueDeviceHigh = 0x0A4,
  kConfigGeneration = 0x0FC,
  kConfigSpace = 0x100,
};

constexpr uint32_t kVendor = 0x564E;  // "NV"

uint64_t setLow(uint64_t old, uint32_t low) { return (old & ~0xFFFFFFFFULL) | low; }
uint64_t setHigh(uint64_t old, uint32_t high) {
  return (old & 0xFFFFFFFFULL) | (static_cast<uint64_t>(high) << 32);
}

}  // namespace

MmioTransport::MmioTransport(std::shared_ptr<VirtioDevice> device, const GuestMemory& memory,
                             IrqLine* irq)
    : device_(std::move(device)), memory_(memory), interrupt_(irq) {
  for (uint16_t max : device_->queueMaxSizes()) {
    queues_.emplace_back(max);
  }
}

void MmioTransport::violation(const char* what) {
  ++violations_;
  static auto logger = log::get("vmm");
  NV_LOG_RATE_LIMITED(logger, spdlog::level::warn, "virtio-mmio (device type {}): {}",
                      device_->deviceType(), what);
}

uint32_t MmioTransport::status() {
  std::lock_guard lock(mutex_);
  return status_;
}

uint64_t MmioTransport::violations() {
  std::lock_guard lock(mutex_);
  return violations_;
}

void MmioTransport::configChanged() {
  {
    std::lock_guard lock(mutex_);
    ++config_generation_;
  }
  interrupt_.signal(kInterruptConfigChange);
}

Queue* MmioTransport::selectedQueue() {
  return queue_sel_ < queues_.size() ? &queues_[queue_sel_] : nullptr;
}

void MmioTransport::read(uint64_t offset, std::span<uint8_t> data) {
  std::lock_guard lock(mutex_);
  if (offset >= kConfigSpace) {
    device_->readConfig(offset - kConfigSpace, data);
    return;
  }
  if (data.size() != 4 || offset % 4 != 0) {
    violation("register read that is not an aligned 32-bit access");
    return;
  }
  uint32_t value = readRegister(offset);
  std::memcpy(data.data(), &value, 4);
}

void MmioTransport::write(uint64_t offset, std::span<const uint8_t> data) {
  std::lock_guard lock(mutex_);
  if (offset >= kConfigSpace) {
    if ((status_ & kStatusDriver) == 0 || (status_ & kStatusFailed) != 0) {
      violation("config write before DRIVER status");
      return;
    }
    device_->writeConfig(offset - kConfigSpace, data);
    return;
  }
  if (data.size() != 4 || offset % 4 != 0) {
    violation("register write that is not an aligned 32-bit access");
    return;
  }
  uint32_t value = 0;
  std::memcpy(&value, data.data(), 4);
  writeRegister(offset, value);
}

uint32_t MmioTransport::readRegister(uint64_t offset) {
  Queue* queue = selectedQueue();
  switch (offset) {
    case kMagicValue:
      return kMagic;
    case kVersion:
      return 2;
    case kDeviceId:
      return device_->deviceType();
    case kVendorId:
      return kVendor;
    case kDeviceFeatures: {
      uint64_t features = device_->deviceFeatures() | kFeatureVersion1;
      if (device_features_sel_ == 0) {
        return static_cast<uint32_t>(features);
      }
      return device_features_sel_ == 1 ? static_cast<uint32_t>(features >> 32) : 0;
    }
    case kQueueNumMax:
      return queue != nullptr ? queue->maxSize() : 0;
    case kQueueReady:
      return queue != nullptr && queue->ready() ? 1 : 0;
    case kInterruptStatus:
      return interrupt_.status();
    case kStatus:
      return status_ | (interrupt_.needsReset() ? kStatusNeedsReset : 0);
    case kConfigGeneration:
      return config_generation_;
    default:
      return 0;  // write-only or reserved registers read as zero
  }
}

void MmioTransport::writeRegister(uint64_t offset, uint32_t value) {
  // Queue and feature setup is only allowed while the driver is setting the device up.
  bool setting_up = (status_ & kStatusDriver) != 0 && (status_ & kStatusDriverOk) == 0 &&
                    (status_ & kStatusFailed) == 0;
  bool features_open = setting_up && (status_ & kStatusFeaturesOk) == 0;
  Queue* queue = selectedQueue();
  auto queue_writable = [&]() {
    if (!setting_up || queue == nullptr || queue->ready()) {
      violation("queue register write outside setup, to a ready queue or a missing queue");
      return false;
    }
    return true;
  };
  switch (offset) {
    case kDeviceFeaturesSel:
      device_features_sel_ = value;
      break;
    case kDriverFeaturesSel:
      driver_features_sel_ = value;
      break;
    case kDriverFeatures:
      if (!features_open) {
        violation("driver features written outside feature negotiation");
      } else if (driver_features_sel_ == 0) {
        driver_features_ = setLow(driver_features_, value);
      } else if (driver_features_sel_ == 1) {
        driver_features_ = setHigh(driver_features_, value);
      } else if (value != 0) {
        violation("driver features beyond bit 63");
      }
      break;
    case kQueueSel:
      queue_sel_ = value;
      break;
    case kQueueNum:
      if (queue_writable()) {
        if (value == 0 || value > queue->maxSize() || (value & (value - 1)) != 0) {
          violation("queue size not a power of two within QueueNumMax");
        } else {
          queue->setSize(static_cast<uint16_t>(value));
        }
      }
      break;
    case kQueueReady:
      if (value == 0) {
        if (queue != nullptr && (status_ & kStatusDriverOk) == 0) {
          queue->setReady(false);
        }
      } else if (queue_writable()) {
        auto valid = queue->validate(memory_);
        if (!valid) {
          violation("queue enabled with an invalid size or ring address");
        } else {
          queue->setEventIdx((driver_features_ & kFeatureEventIdx) != 0);
          queue->setReady(true);
        }
      }
      break;
    case kQueueDescLow:
    case kQueueDescHigh:
    case kQueueDriverLow:
    case kQueueDriverHigh:
    case kQueueDeviceLow:
    case kQueueDeviceHigh:
      if (queue_writable()) {
        bool high = (offset & 4) != 0;
        if (offset < kQueueDriverLow) {
          uint64_t v = queue->descTable().value();
          queue->setDescTable(GuestAddress(high ? setHigh(v, value) : setLow(v, value)));
        } else if (offset < kQueueDeviceLow) {
          uint64_t v = queue->availRing().value();
          queue->setAvailRing(GuestAddress(high ? setHigh(v, value) : setLow(v, value)));
        } else {
          uint64_t v = queue->usedRing().value();
          queue->setUsedRing(GuestAddress(high ? setHigh(v, value) : setLow(v, value)));
        }
      }
      break;
    case kQueueNotify:
      if (!activated_ || value >= queues_.size()) {
        violation("queue notify for an inactive device or a missing queue");
      } else {
        device_->notify(value);
      }
      break;
    case kInterruptAck:
      interrupt_.ack(value);
      break;
    case kStatus:
      setStatus(value);
      break;
    default:
      violation("write to a read-only or reserved register");
      break;
  }
}

void MmioTransport::resetLocked() {
  if (activated_) {
    device_->reset();
    activated_ = false;
  }
  for (Queue& queue : queues_) {
    queue.reset();
  }
  status_ = 0;
  driver_features_ = 0;
  device_features_sel_ = driver_features_sel_ = queue_sel_ = 0;
  interrupt_.clear();
}

void MmioTransport::setStatus(uint32_t value) {
  if (value == 0) {
    resetLocked();
    return;
  }
  if ((value & status_) != status_) {
    violation("driver cleared device status bits without a reset");
    return;
  }
  uint32_t added = value & ~status_;
  if ((added & kStatusFeaturesOk) != 0) {
    uint64_t offered = device_->deviceFeatures() | kFeatureVersion1;
    if ((driver_features_ & ~offered) != 0 || (driver_features_ & kFeatureVersion1) == 0) {
      // Leave FEATURES_OK clear: the driver reads it back and gives up (§3.1.1).
      violation("driver accepted features that were not offered or lacks VERSION_1");
      status_ = value & ~kStatusFeaturesOk;
      return;
    }
  }
  if ((added & kStatusDriverOk) != 0) {
    if ((value & kStatusFeaturesOk) == 0) {
      violation("DRIVER_OK without FEATURES_OK");
      status_ = value | kStatusNeedsReset;
      return;
    }
    status_ = value;
    auto activated = device_->activate(ActivateContext{.memory = &memory_,
                                                       .queues = queues_,
                                                       .interrupt = &interrupt_,
                                                       .acked_features = driver_features_});
    if (!activated) {
      violation("device activation failed");
      status_ |= kStatusNeedsReset;
      interrupt_.signal(kInterruptConfigChange);
      return;
    }
    activated_ = true;
    return;
  }
  status_ = value;
}

}  // namespace nv::vmm::virtio
