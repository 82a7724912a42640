// SPDX-License-Identifier: Apache-2.0
// The tap backend of virtio-net: a Linux tap device with a 12-byte virtio_net_hdr_v1 in front
// of every frame (IFF_VNET_HDR), no offloads, non-blocking.
#pragma once

#include <string>

#include "common/result.h"
#include "common/unique_fd.h"

namespace nv::vmm::virtio::net {

// Size of the virtio-net header the tap and the guest use (virtio_net_hdr_v1, VERSION_1).
inline constexpr int kTapVnetHdrSize = 12;

// Opens /dev/net/tun and attaches to (or creates) the tap `name` with
// IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, header size 12, offloads off; non-blocking, close-on-exec.
// Needs CAP_NET_ADMIN unless the tap already exists and belongs to this user.
[[nodiscard]] Result<UniqueFd> openTap(const std::string& name);

// Takes over an inherited tap fd (a parent opened it, e.g. before moving the VMM into its own
// network namespace): checks that it is a tap with IFF_NO_PI | IFF_VNET_HDR, sets header size
// 12, offloads off, non-blocking and close-on-exec. The fd is owned by the result on success.
[[nodiscard]] Result<UniqueFd> adoptTap(int fd);

}  // namespace nv::vmm::virtio::net
