// SPDX-License-Identifier: Apache-2.0
// virtio-net over a tap: tx chains gathered into one writev, rx frames through a bounce buffer.
#include "vmm/devices/virtio/net/net.h"

#include <sys/timerfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <boost/asio/post.hpp>

#include "common/logging.h"
#include "common/syscall.h"

namespace nv::vmm::virtio::net {
namespace {

constexpr size_t kMaxIov = 1024;          // IOV_MAX
constexpr size_t kNumBuffersOffset = 10;  // virtio_net_hdr_v1.num_buffers

std::shared_ptr<spdlog::logger> logger() {
  static auto log = log::get("vmm");
  return log;
}

}  // namespace

Net::Net(boost::asio::io_context& io, MacAddress mac)
    : tap_(io), mac_(mac), frame_(kMaxFrameWithHdr) {}

Net::~Net() = default;

Result<std::shared_ptr<Net>> Net::create(boost::asio::io_context& io, UniqueFd tap, MacAddress mac,
                                         const NetRateLimit& rx_limit,
                                         const NetRateLimit& tx_limit) {
  if (!tap) {
    return fail(Errc::kInvalidArgument, "virtio-net needs a tap file descriptor");
  }
  std::shared_ptr<Net> net(new Net(io, mac));
  boost::system::error_code error;
  net->tap_.assign(tap.get(), error);  // registers it with the loop's epoll
  if (error) {
    return fail(Errc::kInvalidArgument,
                fmt::format("virtio-net cannot watch its tap: {}", error.message()));
  }
  (void)tap.release();  // owned by tap_ now
  auto timer = [](const char* what) -> Result<UniqueFd> {
    UniqueFd fd(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
    if (!fd) {
      return failErrno(fmt::format("timerfd for the {} rate limiter of virtio-net", what));
    }
    return fd;
  };
  const auto now = Clock::now();
  if (rx_limit.limited()) {
    NV_ASSIGN_OR_RETURN(net->rx_timer_, timer("rx"));
    net->rx_limiter_ = DiskLimiter(rx_limit, now);
  }
  if (tx_limit.limited()) {
    NV_ASSIGN_OR_RETURN(net->tx_timer_, timer("tx"));
    net->tx_limiter_ = DiskLimiter(tx_limit, now);
  }
  return net;
}

void Net::readConfig(uint64_t offset, std::span<uint8_t> data) {
  for (size_t i = 0; i < data.size(); ++i) {
    data[i] = offset + i < mac_.size() ? mac_[offset + i] : 0;
  }
}

Result<void> Net::activate(ActivateContext context) {
  std::lock_guard lock(mutex_);
  if (context.queues.size() != 2 || !context.queues[kRxQueue].ready() ||
      !context.queues[kTxQueue].ready()) {
    return fail(Errc::kInvalidArgument, "virtio-net activated without its rx and tx queues");
  }
  context_ = context;
  active_ = true;
  broken_ = false;
  // Buffers posted (or frames sent) before DRIVER_OK: look at both queues on the loop thread.
  // (Asio's post() has a defaulted `= 0` pointer parameter that trips our warning set.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wzero-as-null-pointer-constant"
  boost::asio::post(tap_.get_executor(), [self = weak_from_this()] {
    if (auto net = self.lock()) {
      std::lock_guard relock(net->mutex_);
      net->processTxLocked(Clock::now());
      net->processRxLocked(Clock::now());
    }
  });
#pragma GCC diagnostic pop
  return {};
}

void Net::reset() {
  std::lock_guard lock(mutex_);
  active_ = false;
  context_ = ActivateContext{};
}

void Net::notify(uint32_t index) {
  std::lock_guard lock(mutex_);
  if (index == kTxQueue) {
    processTxLocked(Clock::now());
  } else if (index == kRxQueue) {
    // New rx buffers: the back-pressure ends here.
    processRxLocked(Clock::now());
  }
}

bool Net::watchingTap() {
  std::lock_guard lock(mutex_);
  return tap_watched_;
}

void Net::processRx(Clock::time_point now) {
  std::lock_guard lock(mutex_);
  processRxLocked(now);
}

void Net::processTx(Clock::time_point now) {
  std::lock_guard lock(mutex_);
  processTxLocked(now);
}

void Net::wakeAfter(int timer, std::chrono::nanoseconds delay) {
  const auto ns = std::max<int64_t>(delay.count(), 1);
  itimerspec when{};
  when.it_value.tv_sec = ns / 1'000'000'000;
  when.it_value.tv_nsec = ns % 1'000'000'000;
  (void)::timerfd_settime(timer, 0, &when, nullptr);
}

void Net::markBroken(const char* queue, const Error& error) {
  ++stats_.queue_errors;
  broken_ = true;
  NV_LOG_RATE_LIMITED(logger(), spdlog::level::warn, "virtio-net {} queue: {}; device needs reset",
                      queue, error.message());
  context_.interrupt->markNeedsReset();
}

void Net::watchTap() {
  if (tap_watched_ || tap_closed_) {
    return;
  }
  tap_watched_ = true;
  tap_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                  [self = weak_from_this()](const boost::system::error_code& error) {
                    auto net = self.lock();
                    if (!net || error) {
                      return;
                    }
                    std::lock_guard lock(net->mutex_);
                    net->tap_watched_ = false;
                    net->processRxLocked(Clock::now());
                  });
}

// --- guest -> tap ---

void Net::processTxLocked(Clock::time_point now) {
  if (!active_ || broken_) {
    return;
  }
  const GuestMemory& memory = *context_.memory;
  auto admit = [&] {
    if (tx_limiter_.ready(now)) {
      return true;
    }
    ++stats_.tx_throttled;
    wakeAfter(tx_timer_.get(), tx_limiter_.wait(now));
    return false;
  };
  auto served = serveRequests(context_.queues[kTxQueue], memory, *context_.interrupt, admit,
                              [&](const DescriptorChain& chain) -> uint32_t {
                                tx_limiter_.consume(transmit(chain), now);
                                return 0;  // the device writes nothing into tx buffers
                              });
  if (!served) {
    markBroken("tx", served.error());
  }
}

uint64_t Net::transmit(const DescriptorChain& chain) {
  const GuestMemory& memory = *context_.memory;
  auto drop = [&](const std::string& why) -> uint64_t {
    ++stats_.tx_dropped;
    NV_LOG_RATE_LIMITED(logger(), spdlog::level::warn, "virtio-net: tx frame dropped: {}", why);
    return 0;
  };
  if (chain.writableBytes() != 0) {
    return drop("the chain has device-writable buffers");
  }
  const uint64_t total = chain.readableBytes();
  if (total < kHdrSize) {
    return drop(fmt::format("{} bytes is shorter than the {}-byte header", total, kHdrSize));
  }
  if (total > kMaxFrameWithHdr) {
    return drop(fmt::format("{} bytes is more than {} (header included)", total, kMaxFrameWithHdr));
  }
  std::vector<std::span<uint8_t>> spans;
  for (const Descriptor& d : chain.descriptors) {
    if (!memory.hostSpans(d.addr, d.len, spans)) {
      return drop("a buffer is not guest RAM");  // the queue checked it; defensive
    }
  }
  // The guest's header goes to the tap cleaned: no offload was negotiated, so flags, GSO and
  // checksum fields must be zero; a header of zeros is exactly that.
  uint8_t header[kHdrSize] = {};
  std::vector<iovec> iov;
  iov.push_back({header, sizeof header});
  uint64_t skip = kHdrSize;
  for (const auto& span : spans) {
    uint64_t off = std::min<uint64_t>(skip, span.size());
    skip -= off;
    if (span.size() > off) {
      iov.push_back({span.data() + off, span.size() - off});
    }
  }
  if (iov.size() > kMaxIov) {
    return drop(fmt::format("{} buffers is more than {}", iov.size(), kMaxIov));
  }
  const ssize_t n = retryOnEintr(
      [&] { return ::writev(tap_.native_handle(), iov.data(), static_cast<int>(iov.size())); });
  if (n < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      ++stats_.tap_errors;
    }
    return drop(fmt::format("tap write: {}", std::strerror(errno)));
  }
  if (static_cast<uint64_t>(n) != total) {
    ++stats_.tap_errors;
    return drop(fmt::format("tap took {} of {} bytes", n, total));
  }
  ++stats_.tx_frames;
  stats_.tx_bytes += total - kHdrSize;
  return total - kHdrSize;
}

// --- tap -> guest ---

ssize_t Net::readFrame() {
  for (;;) {
    ssize_t n = ::read(tap_.native_handle(), frame_.data(), frame_.size());
    if (n >= 0) {
      return n == 0 ? -2 : n;
    }
    if (errno == EINTR) {
      continue;
    }
    return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
  }
}

bool Net::deliver(const DescriptorChain& chain, size_t len) {
  const GuestMemory& memory = *context_.memory;
  // The header the guest gets: nothing offloaded, one buffer (§5.1.6.4 without MRG_RXBUF).
  std::memset(frame_.data(), 0, kHdrSize);
  const uint16_t one = 1;
  std::memcpy(frame_.data() + kNumBuffersOffset, &one, sizeof one);
  size_t copied = 0;
  for (const Descriptor& d : chain.descriptors) {
    if (copied == len) {
      break;
    }
    const size_t chunk = std::min<size_t>(d.len, len - copied);
    if (!memory.write(d.addr, std::span<const uint8_t>(frame_.data() + copied, chunk))) {
      return false;
    }
    copied += chunk;
  }
  return copied == len;
}

void Net::processRxLocked(Clock::time_point now) {
  if (!active_ || broken_ || tap_closed_) {
    return;
  }
  const GuestMemory& memory = *context_.memory;
  Queue& rx = context_.queues[kRxQueue];
  bool used = false;
  for (;;) {
    if (!rx_limiter_.ready(now)) {
      // Stop reading the tap: frames wait in its queue until the timer says so.
      ++stats_.rx_throttled;
      wakeAfter(rx_timer_.get(), rx_limiter_.wait(now));
      break;
    }
    auto popped = rx.pop(memory);
    if (!popped) {
      markBroken("rx", popped.error());
      return;
    }
    if (!popped->has_value()) {
      // No rx buffer: leave frames in the tap (its queue drops what overflows) and wait for
      // the guest's rx notify. Close the race with a buffer posted meanwhile.
      auto more = rx.setNotification(memory, true);
      if (more && *more) {
        continue;
      }
      break;
    }
    const DescriptorChain& chain = **popped;
    if (chain.readableBytes() != 0 || chain.writableBytes() < kHdrSize) {
      ++stats_.bad_rx_buffers;
      NV_LOG_RATE_LIMITED(logger(), spdlog::level::warn,
                          "virtio-net: rx buffer with {} read-only and {} writable bytes "
                          "returned unused",
                          chain.readableBytes(), chain.writableBytes());
      if (auto ok = rx.addUsed(memory, chain.head, 0); !ok) {
        markBroken("rx", ok.error());
        return;
      }
      used = true;
      continue;
    }
    const ssize_t n = readFrame();
    if (n == 0) {
      rx.undoPop();
      watchTap();  // the tap is empty: wake up when it has a frame
      break;
    }
    if (n < 0) {
      rx.undoPop();
      ++stats_.tap_errors;
      if (n == -2) {
        tap_closed_ = true;  // end of file: a socket backend whose peer went away
        NV_LOG_RATE_LIMITED(logger(), spdlog::level::warn, "virtio-net: the tap was closed");
        break;
      }
      NV_LOG_RATE_LIMITED(logger(), spdlog::level::warn, "virtio-net: tap read: {}",
                          std::strerror(errno));
      watchTap();
      break;
    }
    const auto len = static_cast<size_t>(n);
    if (len <= kHdrSize || len > chain.writableBytes()) {
      // A runt, or larger than the buffer the guest posted: dropped, the chain stays posted.
      rx.undoPop();
      ++stats_.rx_dropped;
      NV_LOG_RATE_LIMITED(logger(), spdlog::level::warn,
                          "virtio-net: rx frame of {} bytes dropped (rx buffer holds {})", len,
                          chain.writableBytes());
      continue;
    }
    if (!deliver(chain, len)) {
      rx.undoPop();
      ++stats_.rx_dropped;
      continue;
    }
    if (auto ok = rx.addUsed(memory, chain.head, static_cast<uint32_t>(len)); !ok) {
      markBroken("rx", ok.error());
      return;
    }
    used = true;
    ++stats_.rx_frames;
    stats_.rx_bytes += len - kHdrSize;
    rx_limiter_.consume(len - kHdrSize, now);
  }
  if (used) {
    auto need = rx.needsInterrupt(memory);
    if (!need || *need) {
      context_.interrupt->signal(kInterruptUsedBuffer);
    }
  }
}

// --- MAC addresses ---

Result<MacAddress> parseMac(std::string_view text) {
  auto bad = [&](const char* why) {
    return fail(Errc::kInvalidArgument, fmt::format("invalid MAC address '{}' ({})", text, why));
  };
  MacAddress mac{};
  if (text.size() != 17) {
    return bad("want six hex octets like 52:54:00:12:34:56");
  }
  for (size_t i = 0; i < 6; ++i) {
    if (i > 0 && text[3 * i - 1] != ':') {
      return bad("want six hex octets like 52:54:00:12:34:56");
    }
    unsigned value = 0;
    for (size_t j = 0; j < 2; ++j) {
      const char c = text[3 * i + j];
      unsigned digit = 0;
      if (c >= '0' && c <= '9') {
        digit = static_cast<unsigned>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        digit = static_cast<unsigned>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        digit = static_cast<unsigned>(c - 'A' + 10);
      } else {
        return bad("want six hex octets like 52:54:00:12:34:56");
      }
      value = value * 16 + digit;
    }
    mac[i] = static_cast<uint8_t>(value);
  }
  if ((mac[0] & 1) != 0) {
    return bad("multicast; want a unicast address");
  }
  if (std::all_of(mac.begin(), mac.end(), [](uint8_t b) { return b == 0; })) {
    return bad("all zeros");
  }
  return mac;
}

std::string formatMac(const MacAddress& mac) {
  return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", mac[0], mac[1], mac[2], mac[3],
                     mac[4], mac[5]);
}

}  // namespace nv::vmm::virtio::net
