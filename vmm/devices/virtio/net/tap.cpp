// SPDX-License-Identifier: Apache-2.0
// Tap setup: TUNSETIFF, TUNSETVNETHDRSZ, TUNSETOFFLOAD (before any seccomp filter).
#include "vmm/devices/virtio/net/tap.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>

#include <fmt/format.h>

#include <cstring>

namespace nv::vmm::virtio::net {
namespace {

// Header size 12, no offloads (the guest negotiates none), non-blocking, close-on-exec.
Result<void> configure(int fd, const std::string& what) {
  int hdr = kTapVnetHdrSize;
  if (::ioctl(fd, TUNSETVNETHDRSZ, &hdr) != 0) {
    return failErrno(fmt::format("{}: TUNSETVNETHDRSZ 12", what));
  }
  if (::ioctl(fd, TUNSETOFFLOAD, 0UL) != 0) {
    return failErrno(fmt::format("{}: TUNSETOFFLOAD 0", what));
  }
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
    return failErrno(fmt::format("{}: set O_NONBLOCK", what));
  }
  if (::fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
    return failErrno(fmt::format("{}: set FD_CLOEXEC", what));
  }
  return {};
}

}  // namespace

Result<UniqueFd> openTap(const std::string& name) {
  if (name.empty() || name.size() >= IFNAMSIZ) {
    return fail(Errc::kInvalidArgument,
                fmt::format("--net tap name '{}' must be 1-{} bytes", name, IFNAMSIZ - 1));
  }
  UniqueFd fd(::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC));
  if (!fd) {
    return failErrno("open /dev/net/tun");
  }
  ifreq ifr{};
  std::memcpy(ifr.ifr_name, name.data(), name.size());
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  if (::ioctl(fd.get(), TUNSETIFF, &ifr) != 0) {
    return failErrno(fmt::format("attach to tap {} (TUNSETIFF)", name));
  }
  NV_TRY(configure(fd.get(), "tap " + name));
  return fd;
}

Result<UniqueFd> adoptTap(int fd) {
  const std::string what = fmt::format("--net fd={}", fd);
  if (fd < 0) {
    return fail(Errc::kInvalidArgument, what + ": not a file descriptor");
  }
  ifreq ifr{};
  if (::ioctl(fd, TUNGETIFF, &ifr) != 0) {
    return failErrno(what + ": not an attached tap (TUNGETIFF)");
  }
  const int want = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  if ((ifr.ifr_flags & want) != want) {
    return fail(Errc::kInvalidArgument,
                fmt::format("{}: tap {} was opened without IFF_TAP|IFF_NO_PI|IFF_VNET_HDR "
                            "(flags {:#x})",
                            what, ifr.ifr_name, ifr.ifr_flags));
  }
  NV_TRY(configure(fd, what));
  return UniqueFd(fd);
}

}  // namespace nv::vmm::virtio::net
