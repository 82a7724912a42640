// SPDX-License-Identifier: Apache-2.0
// Rng: the virtio entropy device (device id 4, one request queue) fed by getrandom(2).
#pragma once

#include <atomic>
#include <mutex>
#include <optional>

#include "vmm/devices/virtio/virtio_device.h"

namespace nv::vmm::virtio::rng {

struct RngStats {
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> bytes{0};          // random bytes written to the guest
  std::atomic<uint64_t> bad_requests{0};   // chains with a device-readable buffer: 0 bytes given
  std::atomic<uint64_t> queue_errors{0};   // broken rings: device needs reset
};

// Each request is a chain of device-writable buffers; the device fills at most
// kMaxBytesPerRequest bytes of it (the guest asks again for more) straight into guest memory
// and reports how many it wrote. Processing runs on the device loop thread in notify().
class Rng final : public VirtioDevice {
 public:
  static constexpr uint16_t kQueueSize = 256;
  static constexpr uint32_t kMaxBytesPerRequest = 64 * 1024;

  uint32_t deviceType() const override { return 4; }
  uint64_t deviceFeatures() const override { return kFeatureVersion1 | kFeatureEventIdx; }
  std::vector<uint16_t> queueMaxSizes() const override { return {kQueueSize}; }
  void readConfig(uint64_t, std::span<uint8_t> data) override;  // no config space: zeros
  void writeConfig(uint64_t, std::span<const uint8_t>) override {}
  Result<void> activate(ActivateContext context) override;
  void notify(uint32_t index) override;
  void reset() override;

  [[nodiscard]] RngStats& stats() { return stats_; }
  // Serves every available request (what notify() does); public for tests.
  void processQueue();

 private:
  // Fills the chain's writable buffers; returns the bytes written, or nullopt for a bad chain.
  std::optional<uint32_t> fill(const DescriptorChain& chain);

  std::mutex mutex_;
  ActivateContext context_{};
  bool active_ = false;
  bool broken_ = false;
  RngStats stats_;
};

}  // namespace nv::vmm::virtio::rng
