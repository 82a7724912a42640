// SPDX-License-Identifier: Apache-2.0
// VirtioDevice: what a virtio device (block, vsock, ...) provides to its transport.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "common/result.h"
#include "vmm/devices/interrupt.h"
#include "vmm/devices/virtio/queue.h"
#include "vmm/memory/guest_memory.h"

namespace nv::vmm::virtio {

inline constexpr uint64_t kFeatureVersion1 = 1ULL << 32;  // VIRTIO_F_VERSION_1
inline constexpr uint64_t kFeatureEventIdx = 1ULL << 29;  // VIRTIO_F_EVENT_IDX
inline constexpr uint32_t kInterruptUsedBuffer = 1;
inline constexpr uint32_t kInterruptConfigChange = 2;

// Device status bits (§2.1).
inline constexpr uint32_t kStatusAcknowledge = 1;
inline constexpr uint32_t kStatusDriver = 2;
inline constexpr uint32_t kStatusDriverOk = 4;
inline constexpr uint32_t kStatusFeaturesOk = 8;
inline constexpr uint32_t kStatusNeedsReset = 64;
inline constexpr uint32_t kStatusFailed = 128;

// The interrupt status register shared by transport and device, plus the line it raises.
// Thread-safe: devices signal from their thread, the guest acks from vCPU threads.
class InterruptState {
 public:
  explicit InterruptState(IrqLine* line) : line_(line) {}
  void signal(uint32_t bits) {
    status_.fetch_or(bits);
    if (line_ != nullptr) {
      line_->trigger();
    }
  }
  void ack(uint32_t bits) { status_.fetch_and(~bits); }
  [[nodiscard]] uint32_t status() const { return status_.load(); }
  void clear() {
    status_.store(0);
    needs_reset_.store(false);
  }
  // Called by a device whose driver broke the queue protocol: the transport then reports
  // DEVICE_NEEDS_RESET in its status register (§2.1.2) and a config interrupt is raised.
  void markNeedsReset() {
    needs_reset_.store(true);
    signal(kInterruptConfigChange);
  }
  [[nodiscard]] bool needsReset() const { return needs_reset_.load(); }

 private:
  IrqLine* line_;
  std::atomic<uint32_t> status_{0};
  std::atomic<bool> needs_reset_{false};
};

// The loop of a request queue (virtio-blk, virtio-rng): pops every available chain that
// `admit` lets in (a rate limiter; false puts the chain back and stops until a later call), lets
// `handle` serve it (it returns how many bytes it wrote into the chain), puts the chain on the
// used ring, re-arms notifications when the ring runs dry, and interrupts the driver once at
// the end if it asks for that. An inconsistent ring (a chain that cannot be popped or put
// back) ends the loop with that error and no interrupt: the device must stop using the queue
// and mark itself as needing a reset.
template <class Admit, class Handle>
[[nodiscard]] Result<void> serveRequests(Queue& queue, const GuestMemory& memory,
                                         InterruptState& interrupt, Admit&& admit,
                                         Handle&& handle) {
  bool used_any = false;
  for (;;) {
    uint16_t head = 0;
    NV_ASSIGN_OR_RETURN(std::optional<DescriptorChain> chain, queue.pop(memory, &head));
    if (!chain) {
      auto more = queue.setNotification(memory, true);
      if (more && *more) {
        continue;
      }
      break;
    }
    if (!admit()) {
      queue.undoPop();
      break;
    }
    const uint32_t written = handle(*chain);
    NV_TRY(queue.addUsed(memory, chain->head, written));
    used_any = true;
  }
  if (used_any) {
    auto notify = queue.needsInterrupt(memory);
    if (!notify || *notify) {
      interrupt.signal(kInterruptUsedBuffer);
    }
  }
  return {};
}

template <class Handle>
[[nodiscard]] Result<void> serveRequests(Queue& queue, const GuestMemory& memory,
                                         InterruptState& interrupt, Handle&& handle) {
  return serveRequests(queue, memory, interrupt, [] { return true; },
                       std::forward<Handle>(handle));
}

// Everything a device needs once the driver sets DRIVER_OK. The queues are owned by the
// transport and stay valid until reset() returns.
struct ActivateContext {
  const GuestMemory* memory = nullptr;
  std::span<Queue> queues;
  InterruptState* interrupt = nullptr;
  uint64_t acked_features = 0;
};

// A virtio device model, transport-independent. Config accesses come from vCPU threads;
// queue processing happens on the device's own thread after activate(). Implementations lock
// what those share.
class VirtioDevice {
 public:
  virtual ~VirtioDevice() = default;
  [[nodiscard]] virtual uint32_t deviceType() const = 0;
  // Offered features, including kFeatureVersion1.
  [[nodiscard]] virtual uint64_t deviceFeatures() const = 0;
  // Maximum size of each queue; the number of entries is the number of queues.
  [[nodiscard]] virtual std::vector<uint16_t> queueMaxSizes() const = 0;
  // Device config space (offset from 0x100); out-of-range bytes read as zero / are ignored.
  virtual void readConfig(uint64_t offset, std::span<uint8_t> data) = 0;
  virtual void writeConfig(uint64_t offset, std::span<const uint8_t> data) = 0;
  // Starts processing; an error marks the device NEEDS_RESET.
  [[nodiscard]] virtual Result<void> activate(ActivateContext context) = 0;
  // The driver kicked queue `index` (when not served by an ioeventfd).
  virtual void notify(uint32_t index) = 0;
  // Stops processing and forgets the activation; returns once the device thread no longer
  // touches the queues.
  virtual void reset() = 0;
};

}  // namespace nv::vmm::virtio
