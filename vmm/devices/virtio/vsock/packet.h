// SPDX-License-Identifier: Apache-2.0
// virtio-vsock packets (virtio 1.2 §5.10.6) and per-connection credit accounting: the pure,
// guest-facing half of the vsock device, unit-tested and fuzzed.
//
// Primer: every packet starts with a 44-byte little-endian header (src/dst cid and port, len,
// type, op, flags, buf_alloc, fwd_cnt). The guest sends on the TX queue (header + payload in
// device-readable buffers) and receives on the RX queue (device-writable buffers). Flow
// control is by credit: each side advertises `buf_alloc` (its receive buffer) and `fwd_cnt`
// (bytes it has consumed, a wrapping u32); a sender may have at most
// buf_alloc - (tx_cnt - fwd_cnt) bytes in flight towards its peer.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "common/result.h"
#include "vmm/devices/virtio/queue.h"
#include "vmm/memory/guest_memory.h"

namespace nv::vmm::virtio::vsock {

#pragma pack(push, 1)
struct VsockHeader {
  uint64_t src_cid;
  uint64_t dst_cid;
  uint32_t src_port;
  uint32_t dst_port;
  uint32_t len;
  uint16_t type;
  uint16_t op;
  uint32_t flags;
  uint32_t buf_alloc;
  uint32_t fwd_cnt;
};
#pragma pack(pop)
static_assert(sizeof(VsockHeader) == 44);

inline constexpr uint64_t kHostCid = 2;
inline constexpr uint16_t kTypeStream = 1;
inline constexpr uint32_t kMaxPayload = 64 * 1024;

enum class Op : uint16_t {
  kRequest = 1,
  kResponse = 2,
  kRst = 3,
  kShutdown = 4,
  kRw = 5,
  kCreditUpdate = 6,
  kCreditRequest = 7,
};
inline constexpr uint32_t kShutdownRcv = 1;
inline constexpr uint32_t kShutdownSend = 2;

// A validated packet from the guest's TX queue; payload bytes stay in guest memory.
struct TxPacket {
  VsockHeader header{};
  std::vector<Descriptor> payload;  // exactly header.len bytes, device-readable
};

// Validates a TX chain: readable buffers only, a whole header, a known op, stream type,
// src_cid = the guest's cid, dst_cid = host, len <= 64 KiB and backed by the buffers, no
// payload on non-RW ops.
[[nodiscard]] Result<TxPacket> parseTx(const DescriptorChain& chain, const GuestMemory& memory,
                                       uint64_t guest_cid);

// Copies the payload of `packet` into `out` (which must hold header.len bytes).
[[nodiscard]] Result<void> readPayload(const TxPacket& packet, const GuestMemory& memory,
                                       std::span<uint8_t> out);

// Writes header + payload into an RX chain (device-writable buffers only, large enough).
// Returns the bytes written (for the used ring).
[[nodiscard]] Result<uint32_t> writeRx(const DescriptorChain& chain, const GuestMemory& memory,
                                       const VsockHeader& header,
                                       std::span<const uint8_t> payload);

// Per-connection credit state (§5.10.6.3). Not thread-safe: owned by the device thread.
class Credit {
 public:
  explicit Credit(uint32_t buf_alloc) : buf_alloc_(buf_alloc) {}

  // Takes the peer's advertised buf_alloc / fwd_cnt from any packet it sent.
  void updatePeer(uint32_t peer_buf_alloc, uint32_t peer_fwd_cnt) {
    peer_buf_alloc_ = peer_buf_alloc;
    peer_fwd_cnt_ = peer_fwd_cnt;
  }
  // Bytes we may still send to the peer. Never underflows: a peer that shrinks its buffer
  // below what is in flight gets 0.
  [[nodiscard]] uint32_t peerFree() const {
    auto in_flight = static_cast<uint32_t>(tx_cnt_ - peer_fwd_cnt_);
    return in_flight >= peer_buf_alloc_ ? 0 : peer_buf_alloc_ - in_flight;
  }
  // Records `n` bytes sent to the peer (n <= peerFree()).
  void sent(uint32_t n) { tx_cnt_ += n; }

  // Whether the peer may send us `n` more bytes (our buffer is not overrun). A peer that
  // sends beyond this broke flow control: the connection is reset.
  [[nodiscard]] bool mayReceive(uint32_t n) const {
    auto buffered = static_cast<uint32_t>(rx_cnt_ - fwd_cnt_);
    return buffered <= buf_alloc_ && n <= buf_alloc_ - buffered;
  }
  void received(uint32_t n) { rx_cnt_ += n; }
  // Records `n` received bytes handed on (to the host socket): frees our buffer.
  void forwarded(uint32_t n) { fwd_cnt_ += n; }
  // True when enough was forwarded since the last report that the peer should hear of it.
  [[nodiscard]] bool creditUpdateDue(uint32_t threshold) const {
    return static_cast<uint32_t>(fwd_cnt_ - reported_fwd_cnt_) >= threshold;
  }
  // Fills buf_alloc/fwd_cnt of an outgoing header and remembers what was reported.
  void stamp(VsockHeader& header) {
    header.buf_alloc = buf_alloc_;
    header.fwd_cnt = fwd_cnt_;
    reported_fwd_cnt_ = fwd_cnt_;
  }

 private:
  uint32_t buf_alloc_;
  uint32_t fwd_cnt_ = 0;
  uint32_t reported_fwd_cnt_ = 0;
  uint32_t rx_cnt_ = 0;
  uint32_t peer_buf_alloc_ = 0;
  uint32_t peer_fwd_cnt_ = 0;
  uint32_t tx_cnt_ = 0;
};

}  // namespace nv::vmm::virtio::vsock
