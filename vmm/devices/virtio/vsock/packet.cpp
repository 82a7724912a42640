// SPDX-License-Identifier: Apache-2.0
// virtio-vsock packet validation and RX writing.
#include "vmm/devices/virtio/vsock/packet.h"

#include <fmt/format.h>

#include <algorithm>

namespace nv::vmm::virtio::vsock {
namespace {
Unexpected bad(std::string what) { return fail(Errc::kProtocol, "vsock TX: " + std::move(what)); }
}  // namespace

Result<TxPacket> parseTx(const DescriptorChain& chain, const GuestMemory& memory,
                         uint64_t guest_cid) {
  if (chain.descriptors.empty()) {
    return bad("empty chain");
  }
  for (const Descriptor& d : chain.descriptors) {
    if (d.device_writable) {
      return bad("device-writable buffer in a TX chain");
    }
  }
  // The header may be split across buffers: copy it out.
  TxPacket packet;
  auto* raw = reinterpret_cast<uint8_t*>(&packet.header);
  uint64_t copied = 0;
  size_t index = 0;
  uint64_t offset = 0;  // into descriptors[index]
  while (copied < sizeof(VsockHeader) && index < chain.descriptors.size()) {
    const Descriptor& d = chain.descriptors[index];
    uint64_t chunk = std::min<uint64_t>(d.len - offset, sizeof(VsockHeader) - copied);
    // Bounds: offset + chunk <= d.len, and the walker checked [addr, addr + len) is RAM.
    NV_TRY(memory.read(d.addr.unchecked(offset), std::span<uint8_t>(raw + copied, chunk)));
    copied += chunk;
    offset += chunk;
    if (offset == d.len) {
      ++index;
      offset = 0;
    }
  }
  if (copied < sizeof(VsockHeader)) {
    return bad(fmt::format("chain of {} bytes is shorter than a packet header",
                           chain.readableBytes()));
  }
  const VsockHeader& h = packet.header;
  if (h.op < static_cast<uint16_t>(Op::kRequest) || h.op > static_cast<uint16_t>(Op::kCreditRequest)) {
    return bad(fmt::format("unknown op {}", h.op));
  }
  if (h.type != kTypeStream) {
    return bad(fmt::format("socket type {} is not stream", h.type));
  }
  if (h.src_cid != guest_cid) {
    return bad(fmt::format("src_cid {} is not the guest's cid {}", h.src_cid, guest_cid));
  }
  if (h.dst_cid != kHostCid) {
    return bad(fmt::format("dst_cid {} is not the host", h.dst_cid));
  }
  if (h.len > kMaxPayload) {
    return bad(fmt::format("payload length {} exceeds {}", h.len, kMaxPayload));
  }
  if (h.len != 0 && h.op != static_cast<uint16_t>(Op::kRw)) {
    return bad("payload on a non-RW packet");
  }
  // Payload: the next h.len bytes after the header.
  uint64_t need = h.len;
  while (need > 0 && index < chain.descriptors.size()) {
    const Descriptor& d = chain.descriptors[index];
    uint64_t chunk = std::min<uint64_t>(d.len - offset, need);
    if (chunk > 0) {
      packet.payload.push_back(
          Descriptor{d.addr.unchecked(offset), static_cast<uint32_t>(chunk), false});
    }
    need -= chunk;
    ++index;
    offset = 0;
  }
  if (need > 0) {
    return bad(fmt::format("len {} is larger than the buffers ({} bytes)", h.len,
                           chain.readableBytes()));
  }
  return packet;
}

Result<void> readPayload(const TxPacket& packet, const GuestMemory& memory,
                         std::span<uint8_t> out) {
  if (out.size() < packet.header.len) {
    return fail(Errc::kInternal, "vsock payload buffer too small");
  }
  uint64_t done = 0;
  for (const Descriptor& d : packet.payload) {
    NV_TRY(memory.read(d.addr, out.subspan(done, d.len)));
    done += d.len;
  }
  return {};
}

Result<uint32_t> writeRx(const DescriptorChain& chain, const GuestMemory& memory,
                         const VsockHeader& header, std::span<const uint8_t> payload) {
  if (payload.size() > kMaxPayload) {
    return fail(Errc::kInternal, "vsock RX payload too large");
  }
  uint64_t need = sizeof(VsockHeader) + payload.size();
  if (chain.writableBytes() < need || chain.readableBytes() != 0) {
    return fail(Errc::kProtocol, fmt::format("vsock RX chain ({} writable bytes) cannot hold a "
                                             "{}-byte packet", chain.writableBytes(), need));
  }
  const auto* head = reinterpret_cast<const uint8_t*>(&header);
  uint64_t done = 0;
  for (const Descriptor& d : chain.descriptors) {
    uint64_t used = 0;
    while (used < d.len && done < need) {
      uint64_t chunk = std::min<uint64_t>(d.len - used, need - done);
      if (done < sizeof(VsockHeader)) {
        chunk = std::min<uint64_t>(chunk, sizeof(VsockHeader) - done);
        NV_TRY(memory.write(d.addr.unchecked(used), std::span(head + done, chunk)));
      } else {
        NV_TRY(memory.write(d.addr.unchecked(used),
                            payload.subspan(done - sizeof(VsockHeader), chunk)));
      }
      used += chunk;
      done += chunk;
    }
    if (done == need) {
      break;
    }
  }
  return static_cast<uint32_t>(need);
}

}  // namespace nv::vmm::virtio::vsock
