// SPDX-License-Identifier: Apache-2.0
// Boot timer and debug-exit ports.
#include "vmm/devices/debug_ports.h"

#include "common/logging.h"

namespace nv::vmm {

void BootTimer::read(uint64_t, std::span<uint8_t>) {}

void BootTimer::write(uint64_t offset, std::span<const uint8_t> data) {
  if (offset != 0 || data.empty()) {
    return;
  }
  auto elapsed = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - start_);
  {
    std::lock_guard lock(mutex_);
    if (marks_.size() < kMaxMarks) {
      marks_.push_back(Mark{data[0], elapsed});
    }
  }
  static auto logger = log::get("vmm");
  if (data[0] == kBootComplete) {
    logger->info("Guest-boot-time = {} us {} ms", elapsed.count(), elapsed.count() / 1000);
  } else {
    NV_LOG_RATE_LIMITED(logger, spdlog::level::info, "boot timer mark {} at {} us", data[0],
                        elapsed.count());
  }
}

std::vector<BootTimer::Mark> BootTimer::marks() {
  std::lock_guard lock(mutex_);
  return marks_;
}

void DebugExit::write(uint64_t offset, std::span<const uint8_t> data) {
  if (offset == 0 && !data.empty() && on_exit_) {
    on_exit_(data[0]);
  }
}

}  // namespace nv::vmm
