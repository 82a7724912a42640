// SPDX-License-Identifier: Apache-2.0
// virtio-rng: getrandom(2) straight into guest buffers, bounded per request.
#include "vmm/devices/virtio/rng/rng.h"

#include <sys/random.h>

#include <algorithm>
#include <optional>
#include <vector>

#include "common/logging.h"
#include "common/syscall.h"

namespace nv::vmm::virtio::rng {

void Rng::readConfig(uint64_t, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), uint8_t{0});
}

Result<void> Rng::activate(ActivateContext context) {
  std::lock_guard lock(mutex_);
  if (context.queues.size() != 1 || !context.queues[0].ready()) {
    return fail(Errc::kInvalidArgument, "virtio-rng activated without its request queue");
  }
  context_ = context;
  active_ = true;
  broken_ = false;
  return {};
}

void Rng::reset() {
  std::lock_guard lock(mutex_);
  active_ = false;
  context_ = ActivateContext{};
}

void Rng::notify(uint32_t index) {
  if (index == 0) {
    processQueue();
  }
}

std::optional<uint32_t> Rng::fill(const DescriptorChain& chain) {
  const GuestMemory& memory = *context_.memory;
  std::vector<std::span<uint8_t>> spans;
  uint32_t budget = kMaxBytesPerRequest;
  for (const Descriptor& d : chain.descriptors) {
    if (!d.device_writable) {
      return std::nullopt;  // the driver gives the device only writable buffers (§5.4.6)
    }
    uint32_t take = std::min(d.len, budget);
    if (take == 0) {
      break;
    }
    if (!memory.hostSpans(d.addr, take, spans)) {
      return std::nullopt;
    }
    budget -= take;
  }
  uint32_t written = 0;
  for (auto span : spans) {
    while (!span.empty()) {
      ssize_t n = retryOnEintr([&] { return ::getrandom(span.data(), span.size(), 0); });
      if (n <= 0) {
        return written;  // entropy source failed: report what was filled
      }
      auto got = static_cast<size_t>(n);
      written += static_cast<uint32_t>(got);
      span = span.subspan(got);
    }
  }
  return written;
}

void Rng::processQueue() {
  static auto logger = log::get("vmm");
  std::lock_guard lock(mutex_);
  if (!active_ || broken_) {
    return;
  }
  auto served = serveRequests(
      context_.queues[0], *context_.memory, *context_.interrupt,
      [&](const DescriptorChain& chain) {
        ++stats_.requests;
        uint32_t written = 0;
        if (auto filled = fill(chain)) {
          written = *filled;
          stats_.bytes += written;
        } else {
          ++stats_.bad_requests;
          NV_LOG_RATE_LIMITED(logger, spdlog::level::warn,
                              "virtio-rng: request with a device-readable or bad buffer");
        }
        return written;
      });
  if (!served) {
    ++stats_.queue_errors;
    broken_ = true;
    NV_LOG_RATE_LIMITED(logger, spdlog::level::warn, "virtio-rng: {}; device needs reset",
                        served.error().message());
    context_.interrupt->markNeedsReset();
  }
}

}  // namespace nv::vmm::virtio::rng
