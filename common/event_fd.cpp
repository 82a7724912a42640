// SPDX-License-Identifier: Apache-2.0
#include "common/event_fd.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include "common/syscall.h"

namespace nv {

Result<EventFd> EventFd::create(int flags) {
  int fd = ::eventfd(0, flags | EFD_CLOEXEC);
  if (fd < 0) {
    return failErrno("eventfd");
  }
  return EventFd(UniqueFd(fd));
}

Result<void> EventFd::write(uint64_t value) const {
  ssize_t n = retryOnEintr([&] { return ::write(fd_.get(), &value, sizeof(value)); });
  if (n != sizeof(value)) {
    return failErrno("eventfd write");
  }
  return {};
}

Result<uint64_t> EventFd::read() const {
  uint64_t value = 0;
  ssize_t n = retryOnEintr([&] { return ::read(fd_.get(), &value, sizeof(value)); });
  if (n != sizeof(value)) {
    return failErrno("eventfd read");
  }
  return value;
}

}  // namespace nv
