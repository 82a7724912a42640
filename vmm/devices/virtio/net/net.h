// SPDX-License-Identifier: Apache-2.0
// Net: the virtio-net device (device id 1; queues rx 0 and tx 1) over a tap backend.
//
// Primer: every frame on both queues is preceded by a 12-byte virtio_net_hdr_v1 (flags,
// gso_type, hdr_len, gso_size, csum_start, csum_offset, num_buffers). We offer only
// VIRTIO_F_VERSION_1 and VIRTIO_NET_F_MAC: no checksum/GSO offloads and no mergeable rx
// buffers, so every header is all zeros except num_buffers = 1 on rx, and one rx chain holds
// one whole frame. The tap (IFF_VNET_HDR, header size 12) takes and gives the same header: a tx
// chain goes to it whole, its header zeroed (no offload was negotiated, whatever the guest
// wrote there); an rx frame's header is rewritten for the guest (zeros, num_buffers = 1).
//
// Processing runs on the device loop thread: queue notifies, the tap becoming readable, the
// rate limiters' timerfds. RX reads the tap only while the guest has rx buffers posted
// (back-pressure: otherwise the tap is not watched until the guest kicks the rx queue) and the
// rx limiter has tokens; TX leaves chains on the ring while the tx limiter is empty.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include "common/rate_limit.h"
#include "common/unique_fd.h"
#include "vmm/devices/virtio/virtio_device.h"

namespace nv::vmm::virtio::net {

// A direction's limits: bytes per second (frame bytes, without the virtio-net header) and
// frames per second (the "operations" of the shared bucket pair).
using NetRateLimit = DiskRateLimit;
using MacAddress = std::array<uint8_t, 6>;

inline constexpr uint64_t kFeatureMac = 1ULL << 5;  // VIRTIO_NET_F_MAC
inline constexpr uint32_t kHdrSize = 12;            // virtio_net_hdr_v1
// Largest chain (header + frame) either way, as Firecracker: a 64 KiB frame plus headers.
inline constexpr uint32_t kMaxFrameWithHdr = 65562;

// Counters a test or the stats API can read.
struct NetStats {
  std::atomic<uint64_t> tx_frames{0};  // written to the tap
  std::atomic<uint64_t> tx_bytes{0};   // frame bytes, header not counted
  std::atomic<uint64_t> rx_frames{0};  // delivered to the guest
  std::atomic<uint64_t> rx_bytes{0};
  std::atomic<uint64_t> tx_dropped{0};      // bad tx chains (oversize, writable, too short)
                                            // and tap write failures
  std::atomic<uint64_t> rx_dropped{0};      // frames larger than the posted chain, or runts
  std::atomic<uint64_t> bad_rx_buffers{0};  // rx chains that are read-only or too short
  std::atomic<uint64_t> tap_errors{0};      // failed tap reads/writes (not EAGAIN)
  std::atomic<uint64_t> queue_errors{0};    // broken rings: device needs reset
  std::atomic<uint64_t> tx_throttled{0};    // times the tx limiter paused the tx queue
  std::atomic<uint64_t> rx_throttled{0};    // times the rx limiter paused reading the tap
};

class Net final : public VirtioDevice, public std::enable_shared_from_this<Net> {
 public:
  static constexpr uint16_t kQueueSize = 256;
  static constexpr size_t kRxQueue = 0;
  static constexpr size_t kTxQueue = 1;
  using Clock = TokenBucket::Clock;

  // `tap` is a non-blocking tap fd from openTap()/adoptTap() (tests: one end of a
  // SOCK_SEQPACKET socketpair, which keeps frame boundaries the same way); the device owns it
  // and watches it on `io`. With a limit, the caller runs processRx()/processTx() when
  // rxThrottleFd()/txThrottleFd() (timerfds) fire.
  [[nodiscard]] static Result<std::shared_ptr<Net>> create(boost::asio::io_context& io,
                                                           UniqueFd tap, MacAddress mac,
                                                           const NetRateLimit& rx_limit = {},
                                                           const NetRateLimit& tx_limit = {});
  ~Net() override;

  uint32_t deviceType() const override { return 1; }
  uint64_t deviceFeatures() const override { return kFeatureVersion1 | kFeatureMac; }
  std::vector<uint16_t> queueMaxSizes() const override { return {kQueueSize, kQueueSize}; }
  // virtio_net_config: mac[6] (status and the rest are not offered).
  void readConfig(uint64_t offset, std::span<uint8_t> data) override;
  void writeConfig(uint64_t, std::span<const uint8_t>) override {}
  Result<void> activate(ActivateContext context) override;
  void notify(uint32_t index) override;
  void reset() override;

  [[nodiscard]] NetStats& stats() { return stats_; }
  [[nodiscard]] const MacAddress& mac() const { return mac_; }
  // Moves frames from the tap into posted rx buffers while there are both (and rx tokens);
  // what the tap watch, the rx notify and the rx timer do. Public for tests (fake clock).
  void processRx(Clock::time_point now = Clock::now());
  // Sends the available tx chains to the tap while the tx limiter lets them.
  void processTx(Clock::time_point now = Clock::now());
  // Readable when a throttled direction may go on; -1 without a limit on it.
  [[nodiscard]] int rxThrottleFd() const { return rx_timer_.get(); }
  [[nodiscard]] int txThrottleFd() const { return tx_timer_.get(); }
  // Whether the device waits for the tap to become readable (tests: back-pressure).
  [[nodiscard]] bool watchingTap();

 private:
  Net(boost::asio::io_context& io, MacAddress mac);
  void processRxLocked(Clock::time_point now);
  void processTxLocked(Clock::time_point now);
  // Sends one tx chain; returns its frame length (for the limiter), 0 when dropped.
  uint64_t transmit(const DescriptorChain& chain);
  // Reads one frame into frame_; its length, 0 when the tap has none (EAGAIN), -1 on error.
  ssize_t readFrame();
  // Copies frame_[0, len) into the chain's writable buffers (header rewritten).
  bool deliver(const DescriptorChain& chain, size_t len);
  void watchTap();
  void markBroken(const char* queue, const Error& error);
  static void wakeAfter(int timer, std::chrono::nanoseconds delay);

  boost::asio::posix::stream_descriptor tap_;
  MacAddress mac_;
  std::mutex mutex_;  // guards everything below against activate()/reset() on vCPU threads
  ActivateContext context_{};
  bool active_ = false;
  bool broken_ = false;
  bool tap_watched_ = false;  // an async_wait on the tap is outstanding
  bool tap_closed_ = false;   // the backend reported end of file (socket tests)
  DiskLimiter rx_limiter_;
  DiskLimiter tx_limiter_;
  UniqueFd rx_timer_;
  UniqueFd tx_timer_;
  std::vector<uint8_t> frame_;  // one rx frame (header included), kMaxFrameWithHdr bytes
  NetStats stats_;
};

// "52:54:00:12:34:56" -> bytes; a unicast address (first octet's low bit clear), not zero.
[[nodiscard]] Result<MacAddress> parseMac(std::string_view text);
[[nodiscard]] std::string formatMac(const MacAddress& mac);

}  // namespace nv::vmm::virtio::net
