// SPDX-License-Identifier: Apache-2.0
// EventFd: an eventfd(2) counter, used for irqfd/ioeventfd and for waking event loops.
#pragma once

#include <cstdint>

#include "common/result.h"
#include "common/unique_fd.h"

namespace nv {

class EventFd {
 public:
  // flags: EFD_NONBLOCK, EFD_CLOEXEC (always added), EFD_SEMAPHORE.
  [[nodiscard]] static Result<EventFd> create(int flags = 0);

  // Adds `value` to the counter.
  [[nodiscard]] Result<void> write(uint64_t value = 1) const;
  // Reads and resets the counter (blocks when zero unless EFD_NONBLOCK; then EAGAIN).
  [[nodiscard]] Result<uint64_t> read() const;
  [[nodiscard]] int fd() const noexcept { return fd_.get(); }

 private:
  explicit EventFd(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

}  // namespace nv
