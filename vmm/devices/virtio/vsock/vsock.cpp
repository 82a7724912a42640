// SPDX-License-Identifier: Apache-2.0
// virtio-vsock device and hybrid Unix-socket muxer.
#include "vmm/devices/virtio/vsock/vsock.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "common/logging.h"

namespace nv::vmm::virtio::vsock {
namespace {

using boost::asio::local::stream_protocol;
constexpr size_t kRxQueue = 0;
constexpr size_t kTxQueue = 1;
constexpr size_t kMaxConnectLine = 32;

std::shared_ptr<spdlog::logger> logger() {
  static auto log = log::get("vmm");
  return log;
}

}  // namespace

struct Vsock::Connection {
  Connection(stream_protocol::socket s, uint32_t host, uint32_t guest)
      : socket(std::move(s)), host_port(host), guest_port(guest), credit(kBufAlloc) {}
  stream_protocol::socket socket;
  uint32_t host_port;
  uint32_t guest_port;
  Credit credit;
  bool established = false;
  bool host_initiated = false;
  bool read_armed = false;      // async_wait(read) outstanding
  bool host_eof = false;        // host side closed: no more data to the guest
  bool write_armed = false;
  uint32_t not_guest_data = 0;   // leading bytes of to_host that are ours ("OK <port>\n")
  std::vector<uint8_t> to_host;  // guest bytes not yet written to the socket
};

Vsock::Vsock(boost::asio::io_context& io, uint64_t guest_cid, std::string uds_path)
    : io_(io), guest_cid_(guest_cid), uds_path_(std::move(uds_path)), acceptor_(io) {}

Vsock::~Vsock() {
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  ::unlink(uds_path_.c_str());
}

Result<std::shared_ptr<Vsock>> Vsock::create(boost::asio::io_context& io, uint64_t guest_cid,
                                             std::string uds_path) {
  if (uds_path.size() >= sizeof(sockaddr_un{}.sun_path) - 12) {
    return fail(Errc::kInvalidArgument, fmt::format("vsock socket path {} is too long", uds_path));
  }
  std::shared_ptr<Vsock> vsock(new Vsock(io, guest_cid, uds_path));
  ::unlink(uds_path.c_str());
  boost::system::error_code error;
  vsock->acceptor_.open(stream_protocol(), error);
  if (!error) {
    vsock->acceptor_.bind(stream_protocol::endpoint(uds_path), error);
  }
  if (!error) {
    vsock->acceptor_.listen(128, error);
  }
  if (error) {
    return fail(Errc::kUnavailable, fmt::format("listen on vsock socket {}: {}", uds_path,
                                                error.message()));
  }
  vsock->accept();
  return vsock;
}

void Vsock::readConfig(uint64_t offset, std::span<uint8_t> data) {
  uint8_t config[8];
  std::memcpy(config, &guest_cid_, 8);
  for (size_t i = 0; i < data.size(); ++i) {
    data[i] = offset + i < sizeof(config) ? config[offset + i] : 0;
  }
}

Result<void> Vsock::activate(ActivateContext context) {
  std::lock_guard lock(mutex_);
  if (context.queues.size() != 3 || !context.queues[kRxQueue].ready() ||
      !context.queues[kTxQueue].ready()) {
    return fail(Errc::kInvalidArgument, "virtio-vsock activated without its RX/TX queues");
  }
  context_ = context;
  active_ = true;
  // Host connections that arrived before the driver was ready: send their REQUESTs now.
  // (Asio's post() has a defaulted `= 0` pointer parameter that trips our warning set.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wzero-as-null-pointer-constant"
  boost::asio::post(io_, [self = weak_from_this()] {
    if (auto vsock = self.lock()) {
      std::lock_guard relock(vsock->mutex_);
      vsock->processRx();
    }
  });
#pragma GCC diagnostic pop
  return {};
}

void Vsock::reset() {
  std::lock_guard lock(mutex_);
  active_ = false;
  context_ = ActivateContext{};
  // The guest forgets every connection on reset; so do we.
  connections_.clear();
  control_.clear();
}

VsockStats Vsock::stats() {
  std::lock_guard lock(mutex_);
  return stats_;
}

void Vsock::notify(uint32_t index) {
  std::lock_guard lock(mutex_);
  if (!active_) {
    return;
  }
  if (index == kTxQueue) {
    processTx();
  }
  processRx();
}

VsockHeader Vsock::makeHeader(uint32_t host_port, uint32_t guest_port, Op op) const {
  VsockHeader h{};
  h.src_cid = kHostCid;
  h.dst_cid = guest_cid_;
  h.src_port = host_port;
  h.dst_port = guest_port;
  h.type = kTypeStream;
  h.op = static_cast<uint16_t>(op);
  return h;
}

void Vsock::queueControl(const std::shared_ptr<Connection>& conn, Op op, uint32_t flags) {
  VsockHeader h = makeHeader(conn->host_port, conn->guest_port, op);
  h.flags = flags;
  conn->credit.stamp(h);
  control_.push_back(h);
}

void Vsock::queueRst(uint32_t host_port, uint32_t guest_port) {
  ++stats_.resets_sent;
  control_.push_back(makeHeader(host_port, guest_port, Op::kRst));
}

void Vsock::closeConnection(const Key& key) {
  connections_.erase(key);  // the socket closes with it
}

// --- host side: accepting "CONNECT <port>\n" ---

void Vsock::accept() {
  auto self = weak_from_this();
  acceptor_.async_accept([self](const boost::system::error_code& error,
                                stream_protocol::socket socket) {
    auto vsock = self.lock();
    if (!vsock || error == boost::asio::error::operation_aborted) {
      return;
    }
    if (!error) {
      vsock->readConnectLine(std::make_shared<stream_protocol::socket>(std::move(socket)),
                             std::make_shared<std::string>());
    }
    vsock->accept();
  });
}

void Vsock::readConnectLine(std::shared_ptr<stream_protocol::socket> socket,
                            std::shared_ptr<std::string> line) {
  // One byte at a time so nothing after the newline is consumed: those bytes are stream data.
  auto byte = std::make_shared<char>();
  auto self = weak_from_this();
  socket->async_read_some(
      boost::asio::buffer(byte.get(), 1),
      [self, socket, line, byte](const boost::system::error_code& error, size_t) {
        auto vsock = self.lock();
        if (!vsock || error) {
          return;
        }
        if (*byte != '\n') {
          if (line->size() >= kMaxConnectLine) {
            return;  // too long: drop the connection
          }
          line->push_back(*byte);
          vsock->readConnectLine(socket, line);
          return;
        }
        unsigned port = 0;
        char keyword[8] = {};
        if (std::sscanf(line->c_str(), "%7s %u", keyword, &port) != 2 ||
            strcasecmp(keyword, "CONNECT") != 0) {
          NV_LOG_RATE_LIMITED(logger(), spdlog::level::warn, "vsock: bad host request '{}'",
                              *line);
          return;
        }
        std::lock_guard lock(vsock->mutex_);
        // Before the driver is up the REQUEST waits in control_; activate() flushes it.
        if (vsock->connections_.size() >= kMaxConnections) {
          return;
        }
        uint32_t host_port = vsock->next_host_port_++;
        if (vsock->next_host_port_ == 0) {
          vsock->next_host_port_ = kFirstHostPort;
        }
        auto conn = std::make_shared<Connection>(std::move(*socket), host_port, port);
        conn->host_initiated = true;
        vsock->connections_[{host_port, port}] = conn;
        vsock->queueControl(conn, Op::kRequest);
        vsock->processRx();
      });
}

// --- guest -> host ---

void Vsock::processTx() {
  const GuestMemory& memory = *context_.memory;
  Queue& tx = context_.queues[kTxQueue];
  bool used = false;
  for (;;) {
    auto popped = tx.pop(memory);
    if (!popped) {
      NV_LOG_RATE_LIMITED(logger(), spdlog::level::warn, "virtio-vsock: {}; device needs reset",
                          popped.error().message());
      context_.interrupt->markNeedsReset();
      active_ = false;
      return;
    }
    if (!popped->has_value()) {
      break;
    }
    auto packet = parseTx(**popped, memory, guest_cid_);
    if (packet) {
      ++stats_.tx_packets;
      handlePacket(*packet);
    } else {
      ++stats_.bad_packets;
      NV_LOG_RATE_LIMITED(logger(), spdlog::level::warn, "virtio-vsock: {}",
                          packet.error().message());
    }
    (void)tx.addUsed(memory, (**popped).head, 0);
    used = true;
  }
  if (used) {
    auto need = tx.needsInterrupt(memory);
    if (!need || *need) {
      context_.interrupt->signal(kInterruptUsedBuffer);
    }
  }
}

void Vsock::handlePacket(const TxPacket& packet) {
  const VsockHeader& h = packet.header;
  Key key{h.dst_port, h.src_port};
  auto it = connections_.find(key);
  auto op = static_cast<Op>(h.op);
  if (it == connections_.end()) {
    if (op == Op::kRequest) {
      // Guest-initiated: connect to "<uds>_<port>".
      if (connections_.size() >= kMaxConnections) {
        queueRst(h.dst_port, h.src_port);
        return;
      }
      stream_protocol::socket socket(io_);
      boost::system::error_code error;
      socket.connect(stream_protocol::endpoint(fmt::format("{}_{}", uds_path_, h.dst_port)), error);
      if (error) {
        queueRst(h.dst_port, h.src_port);
        return;
      }
      socket.non_blocking(true, error);
      auto conn = std::make_shared<Connection>(std::move(socket), h.dst_port, h.src_port);
      conn->credit.updatePeer(h.buf_alloc, h.fwd_cnt);
      conn->established = true;
      connections_[key] = conn;
      queueControl(conn, Op::kResponse);
    } else if (op != Op::kRst) {
      queueRst(h.dst_port, h.src_port);
    }
    return;
  }
  auto conn = it->second;
  conn->credit.updatePeer(h.buf_alloc, h.fwd_cnt);
  switch (op) {
    case Op::kResponse:
      if (conn->host_initiated && !conn->established) {
        conn->established = true;
        boost::system::error_code error;
        conn->socket.non_blocking(true, error);
        std::string ok = fmt::format("OK {}\n", conn->host_port);
        conn->to_host.insert(conn->to_host.begin(), ok.begin(), ok.end());
        conn->not_guest_data = static_cast<uint32_t>(ok.size());
        flushToHost(conn);
      }
      break;
    case Op::kRw: {
      if (!conn->established || !conn->credit.mayReceive(h.len)) {
        ++stats_.credit_violations;
        NV_LOG_RATE_LIMITED(logger(), spdlog::level::warn,
                            "virtio-vsock: guest port {} overran its credit; reset", h.src_port);
        queueRst(conn->host_port, conn->guest_port);
        closeConnection(key);
        return;
      }
      size_t old = conn->to_host.size();
      conn->to_host.resize(old + h.len);
      if (!readPayload(packet, *context_.memory,
                       std::span<uint8_t>(conn->to_host.data() + old, h.len))) {
        conn->to_host.resize(old);
        return;
      }
      conn->credit.received(h.len);
      flushToHost(conn);
      break;
    }
    case Op::kCreditUpdate:
      break;  // peer credit already taken; processRx() resumes sending
    case Op::kCreditRequest:
      queueControl(conn, Op::kCreditUpdate);
      break;
    case Op::kShutdown:
      if ((h.flags & (kShutdownRcv | kShutdownSend)) == (kShutdownRcv | kShutdownSend)) {
        queueRst(conn->host_port, conn->guest_port);
        closeConnection(key);
      } else if ((h.flags & kShutdownSend) != 0) {
        boost::system::error_code ignored;
        conn->socket.shutdown(stream_protocol::socket::shutdown_send, ignored);
      }
      break;
    case Op::kRst:
      closeConnection(key);
      break;
    case Op::kRequest:
      queueRst(conn->host_port, conn->guest_port);  // duplicate request
      closeConnection(key);
      break;
  }
}

void Vsock::flushToHost(const std::shared_ptr<Connection>& conn) {
  while (!conn->to_host.empty()) {
    ssize_t n = ::send(conn->socket.native_handle(), conn->to_host.data(), conn->to_host.size(),
                       MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!conn->write_armed) {
        conn->write_armed = true;
        auto self = weak_from_this();
        conn->socket.async_wait(stream_protocol::socket::wait_write,
                                [self, conn](const boost::system::error_code& error) {
                                  auto vsock = self.lock();
                                  if (!vsock || error) {
                                    return;
                                  }
                                  std::lock_guard lock(vsock->mutex_);
                                  conn->write_armed = false;
                                  if (vsock->active_) {
                                    vsock->flushToHost(conn);
                                    vsock->processRx();
                                  }
                                });
      }
      return;
    }
    if (n <= 0) {
      queueRst(conn->host_port, conn->guest_port);
      closeConnection({conn->host_port, conn->guest_port});
      return;
    }
    // The "OK <port>\n" line is not guest data; everything else frees guest credit.
    conn->to_host.erase(conn->to_host.begin(), conn->to_host.begin() + n);
    auto sent = static_cast<uint32_t>(n);
    uint32_t ours = std::min(sent, conn->not_guest_data);
    conn->not_guest_data -= ours;
    conn->credit.forwarded(sent - ours);
  }
  if (conn->credit.creditUpdateDue(kCreditThreshold)) {
    queueControl(conn, Op::kCreditUpdate);
  }
}

// --- host -> guest ---

void Vsock::armRead(const std::shared_ptr<Connection>& conn) {
  if (conn->read_armed) {
    return;
  }
  conn->read_armed = true;
  auto self = weak_from_this();
  conn->socket.async_wait(stream_protocol::socket::wait_read,
                          [self, conn](const boost::system::error_code& error) {
                            auto vsock = self.lock();
                            if (!vsock || error) {
                              return;
                            }
                            std::lock_guard lock(vsock->mutex_);
                            conn->read_armed = false;
                            if (vsock->active_) {
                              vsock->processRx();
                            }
                          });
}

void Vsock::processRx() {
  if (!active_) {
    return;
  }
  const GuestMemory& memory = *context_.memory;
  Queue& rx = context_.queues[kRxQueue];
  bool used = false;
  std::vector<uint8_t> payload;
  auto next_conn = connections_.begin();
  for (;;) {
    auto popped = rx.pop(memory);
    if (!popped) {
      context_.interrupt->markNeedsReset();
      active_ = false;
      return;
    }
    if (!popped->has_value()) {
      // No RX buffer: connections with data wait for the guest to post more.
      break;
    }
    const DescriptorChain& chain = **popped;
    uint64_t room = chain.writableBytes();
    if (chain.readableBytes() != 0 || room < sizeof(VsockHeader)) {
      ++stats_.bad_packets;
      (void)rx.addUsed(memory, chain.head, 0);
      used = true;
      continue;
    }
    bool sent = false;
    if (!control_.empty()) {
      VsockHeader h = control_.front();
      control_.pop_front();
      auto written = writeRx(chain, memory, h, {});
      (void)rx.addUsed(memory, chain.head, written ? *written : 0);
      sent = true;
    } else {
      // Data: round robin over established connections with credit and readable bytes.
      for (size_t tries = connections_.size(); tries > 0 && !sent; --tries) {
        if (next_conn == connections_.end()) {
          next_conn = connections_.begin();
        }
        auto conn = next_conn->second;
        ++next_conn;
        if (!conn->established || conn->host_eof) {
          continue;
        }
        uint64_t max = std::min<uint64_t>({room - sizeof(VsockHeader), conn->credit.peerFree(),
                                           kMaxPayload});
        if (max == 0) {
          continue;  // wait for a CREDIT_UPDATE from the guest
        }
        payload.resize(max);
        ssize_t n = ::recv(conn->socket.native_handle(), payload.data(), max, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
          armRead(conn);
          continue;
        }
        VsockHeader h = makeHeader(conn->host_port, conn->guest_port, Op::kRw);
        if (n <= 0) {
          // Host closed: tell the guest neither side will send more.
          conn->host_eof = true;
          h.op = static_cast<uint16_t>(Op::kShutdown);
          h.flags = kShutdownRcv | kShutdownSend;
          n = 0;
        }
        h.len = static_cast<uint32_t>(n);
        conn->credit.stamp(h);
        conn->credit.sent(h.len);
        auto written =
            writeRx(chain, memory, h, std::span<const uint8_t>(payload.data(), h.len));
        (void)rx.addUsed(memory, chain.head, written ? *written : 0);
        sent = true;
      }
    }
    if (!sent) {
      rx.undoPop();
      break;
    }
    ++stats_.rx_packets;
    used = true;
  }
  if (used) {
    auto need = rx.needsInterrupt(memory);
    if (!need || *need) {
      context_.interrupt->signal(kInterruptUsedBuffer);
    }
  }
}

}  // namespace nv::vmm::virtio::vsock
