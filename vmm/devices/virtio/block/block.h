// SPDX-License-Identifier: Apache-2.0
// Block: the virtio-blk device (one request queue) over a raw disk image file.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "common/rate_limit.h"
#include "common/unique_fd.h"
#include "vmm/devices/virtio/block/block_request.h"
#include "vmm/devices/virtio/virtio_device.h"

namespace nv::vmm::virtio::block {

// Counters a test or the stats API can read.
struct BlockStats {
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> read_bytes{0};
  std::atomic<uint64_t> write_bytes{0};
  std::atomic<uint64_t> bad_requests{0};   // answered with an error status
  std::atomic<uint64_t> queue_errors{0};   // broken rings: device needs reset
  std::atomic<uint64_t> media_changes{0};  // replaceMedia() calls that succeeded
  std::atomic<uint64_t> throttled{0};      // times the rate limiter paused the queue
};

// Requests are processed on the device loop thread in notify(); config reads come from vCPU
// threads. Offers FLUSH, DISCARD, WRITE_ZEROES, EVENT_IDX, and RO for read-only disks.
class Block final : public VirtioDevice {
 public:
  static constexpr uint16_t kQueueSize = 256;

  // Opens `path` (O_RDONLY when read_only). The disk size is rounded down to whole sectors.
  // With a `limit`, requests wait for the rate limiter; the caller then runs processQueue()
  // whenever throttleFd() (a timerfd) fires.
  [[nodiscard]] static Result<std::shared_ptr<Block>> open(const std::string& path,
                                                           bool read_only, std::string id,
                                                           const DiskRateLimit& limit = {});

  uint32_t deviceType() const override { return 2; }
  uint64_t deviceFeatures() const override;
  std::vector<uint16_t> queueMaxSizes() const override { return {kQueueSize}; }
  void readConfig(uint64_t offset, std::span<uint8_t> data) override;
  void writeConfig(uint64_t, std::span<const uint8_t>) override {}
  Result<void> activate(ActivateContext context) override;
  void notify(uint32_t index) override;
  void reset() override;

  [[nodiscard]] BlockStats& stats() { return stats_; }
  [[nodiscard]] bool readOnly() const { return geometry_.read_only; }
  [[nodiscard]] uint64_t capacitySectors() const { return capacity_.load(); }
  [[nodiscard]] const std::string& id() const { return id_; }
  [[nodiscard]] std::string path();
  // Swaps the backing file at runtime (pods: new rootfs media). `read_only` must match the
  // disk's mode (the RO feature was negotiated at boot). Waits for the request in progress;
  // later requests use the new file. The caller raises the config-change interrupt (the
  // capacity may differ). Returns the new capacity in sectors.
  [[nodiscard]] Result<uint64_t> replaceMedia(const std::string& path, bool read_only);
  // Processes the available requests the rate limiter lets through at `now` (what notify()
  // does); public for tests.
  void processQueue(TokenBucket::Clock::time_point now = TokenBucket::Clock::now());
  // Readable when a throttled queue may go on; -1 without a rate limit.
  [[nodiscard]] int throttleFd() const { return throttle_timer_.get(); }

 private:
  Block(UniqueFd fd, uint64_t sectors, bool read_only, std::string id, std::string path)
      : fd_(std::move(fd)),
        geometry_{sectors, read_only, true},
        id_(std::move(id)),
        path_(std::move(path)),
        capacity_(sectors) {}
  // Asks for processQueue() again in `delay` (the throttle timer).
  void wakeAfter(std::chrono::nanoseconds delay);
  // Executes a validated request; returns the status byte and bytes written to the guest.
  uint8_t execute(const Request& req, uint32_t* written);

  UniqueFd fd_;
  DiskGeometry geometry_;
  std::string id_;
  std::mutex path_mutex_;
  std::string path_;                   // guarded by path_mutex_
  std::atomic<uint64_t> capacity_;     // config-space copy of geometry_.capacity_sectors
  std::mutex mutex_;  // guards the activation state against reset() from vCPU threads
  ActivateContext context_{};
  bool active_ = false;
  bool broken_ = false;
  DiskLimiter limiter_;      // guarded by mutex_
  UniqueFd throttle_timer_;  // timerfd; only with a rate limit
  BlockStats stats_;
};

}  // namespace nv::vmm::virtio::block
