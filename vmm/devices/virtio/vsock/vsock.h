// SPDX-License-Identifier: Apache-2.0
// Vsock: the virtio-vsock device with Firecracker's "hybrid" Unix-socket backend.
//
// Host-initiated: a host process connects to `uds_path` and writes "CONNECT <port>\n"; the
// device sends REQUEST to the guest's port and, on RESPONSE, answers "OK <host_port>\n" on the
// Unix stream, after which bytes flow both ways. Guest-initiated: a guest connect to (cid 2,
// port P) is forwarded to a Unix connect to "<uds_path>_<P>"; RST if nobody listens.
// Credit flow control on both sides (packet.h). Everything runs on the device loop thread;
// activate()/reset() from vCPU threads take the mutex.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>

#include "vmm/devices/virtio/virtio_device.h"
#include "vmm/devices/virtio/vsock/packet.h"

namespace nv::vmm::virtio::vsock {

struct VsockStats {
  uint64_t tx_packets = 0;
  uint64_t rx_packets = 0;
  uint64_t bad_packets = 0;
  uint64_t resets_sent = 0;
  uint64_t credit_violations = 0;
};

class Vsock final : public VirtioDevice, public std::enable_shared_from_this<Vsock> {
 public:
  static constexpr uint16_t kQueueSize = 256;
  static constexpr uint32_t kBufAlloc = 256 * 1024;   // our receive buffer per connection
  static constexpr uint32_t kCreditThreshold = 4096;  // send CREDIT_UPDATE after this much
  static constexpr size_t kMaxConnections = 1023;
  static constexpr uint32_t kFirstHostPort = 1U << 30;

  // Binds `uds_path` (replacing a stale socket file) and starts accepting on `io`.
  [[nodiscard]] static Result<std::shared_ptr<Vsock>> create(boost::asio::io_context& io,
                                                             uint64_t guest_cid,
                                                             std::string uds_path);
  ~Vsock() override;

  uint32_t deviceType() const override { return 19; }
  uint64_t deviceFeatures() const override { return kFeatureVersion1; }
  std::vector<uint16_t> queueMaxSizes() const override {
    return {kQueueSize, kQueueSize, kQueueSize};
  }
  void readConfig(uint64_t offset, std::span<uint8_t> data) override;
  void writeConfig(uint64_t, std::span<const uint8_t>) override {}
  Result<void> activate(ActivateContext context) override;
  void notify(uint32_t index) override;
  void reset() override;

  [[nodiscard]] VsockStats stats();

 private:
  struct Connection;
  using Key = std::pair<uint32_t, uint32_t>;  // (host port, guest port)

  Vsock(boost::asio::io_context& io, uint64_t guest_cid, std::string uds_path);
  void accept();
  void readConnectLine(std::shared_ptr<boost::asio::local::stream_protocol::socket> socket,
                       std::shared_ptr<std::string> line);
  void processTx();
  void handlePacket(const TxPacket& packet);
  void processRx();
  void queueControl(const std::shared_ptr<Connection>& conn, Op op, uint32_t flags = 0);
  void queueRst(uint32_t host_port, uint32_t guest_port);
  void closeConnection(const Key& key);
  void armRead(const std::shared_ptr<Connection>& conn);
  void flushToHost(const std::shared_ptr<Connection>& conn);
  VsockHeader makeHeader(uint32_t host_port, uint32_t guest_port, Op op) const;

  boost::asio::io_context& io_;
  uint64_t guest_cid_;
  std::string uds_path_;
  boost::asio::local::stream_protocol::acceptor acceptor_;
  std::mutex mutex_;
  ActivateContext context_{};
  bool active_ = false;
  std::map<Key, std::shared_ptr<Connection>> connections_;
  std::deque<VsockHeader> control_;  // headers of control packets to the guest, in order
  uint32_t next_host_port_ = kFirstHostPort;
  VsockStats stats_;
};

}  // namespace nv::vmm::virtio::vsock
