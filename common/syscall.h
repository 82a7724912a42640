// SPDX-License-Identifier: Apache-2.0
// Small helpers around raw syscalls.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <cerrno>
#include <cstring>

namespace nv {

// Calls fn() again while it fails with EINTR; returns its last result.
template <class F>
auto retryOnEintr(F fn) -> decltype(fn()) {
  decltype(fn()) result;
  do {
    result = fn();
  } while (result == -1 && errno == EINTR);
  return result;
}

// sendmsg() of `size` bytes with `fd` attached (SCM_RIGHTS; none when fd < 0), MSG_NOSIGNAL,
// retried on EINTR. Returns the bytes sent or -1 (errno set).
inline ssize_t sendWithFd(int socket, const void* data, size_t size, int fd) {
  iovec iov{const_cast<void*>(data), size};  // sendmsg only reads it
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  if (fd >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
  }
  return retryOnEintr([&] { return ::sendmsg(socket, &msg, MSG_NOSIGNAL); });
}

}  // namespace nv
