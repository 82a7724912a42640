// SPDX-License-Identifier: Apache-2.0
// Fuzzes virtio-net: the input is the guest memory holding both rings and their buffers (the
// first bytes pick queue sizes, indices, a memory hole and the frames the host side puts on
// the "tap", a SOCK_SEQPACKET socketpair). Every ring field and descriptor is hostile. The
// device must write only into guest RAM, never hand the guest more frames than the host sent,
// and put on the tap only frames of a header plus at most kMaxFrameWithHdr bytes.
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "tests/support/fake_guest_memory.h"
#include "tests/support/fake_irq_line.h"
#include "vmm/devices/virtio/net/net.h"

using nv::vmm::GuestAddress;
using nv::vmm::testing::FakeGuestMemory;
using nv::vmm::testing::FakeIrqLine;
using namespace nv::vmm::virtio;

namespace {

void setUp(Queue& queue, uint16_t size, uint64_t base, uint16_t start, bool event_idx) {
  queue.setSize(size);
  queue.setDescTable(GuestAddress(base));
  queue.setAvailRing(GuestAddress(base + 0x1000));
  queue.setUsedRing(GuestAddress(base + 0x2000));
  queue.setEventIdx(event_idx);
  queue.setIndices(start, start);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 16) {
    return 0;
  }
  const auto rx_size = static_cast<uint16_t>(1U << (data[0] % 9));  // 1..256
  const auto tx_size = static_cast<uint16_t>(1U << (data[1] % 9));
  uint16_t rx_start, tx_start;
  std::memcpy(&rx_start, data + 2, 2);
  std::memcpy(&tx_start, data + 4, 2);
  const bool event_idx = (data[6] & 1) != 0;
  const bool hole = (data[6] & 2) != 0;
  const size_t frames = data[7] % 5;
  uint16_t frame_len[4];
  std::memcpy(frame_len, data + 8, sizeof frame_len);
  data += 16;
  size -= 16;
  FakeGuestMemory memory =
      hole ? FakeGuestMemory(0, 0x10000, 0x18000, 0x18000) : FakeGuestMemory(0x30000);
  for (size_t i = 0; i < size && i < 0x30000; ++i) {
    if (uint8_t* p = memory.at(i)) {
      *p = data[i];
    }
  }
  std::vector<Queue> queues;
  queues.emplace_back(net::Net::kQueueSize);
  queues.emplace_back(net::Net::kQueueSize);
  setUp(queues[0], rx_size, 0x0, rx_start, event_idx);
  setUp(queues[1], tx_size, 0x3000, tx_start, event_idx);
  if (!queues[0].validate(memory) || !queues[1].validate(memory)) {
    return 0;
  }
  queues[0].setReady(true);
  queues[1].setReady(true);
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
    return 0;
  }
  nv::UniqueFd peer(sv[1]);
  // Frames from the host: lengths from the input (runts and oversize ones too), bytes from it.
  std::vector<uint8_t> frame;
  size_t sent = 0;
  for (size_t i = 0; i < frames; ++i) {
    frame.assign(frame_len[i] % 4096, static_cast<uint8_t>(i));
    if (::send(peer.get(), frame.data(), frame.size(), MSG_DONTWAIT) ==
        static_cast<ssize_t>(frame.size())) {
      ++sent;
    }
  }
  boost::asio::io_context io;
  FakeIrqLine irq;
  InterruptState interrupt(&irq);
  auto device = net::Net::create(io, nv::UniqueFd(sv[0]), {0x52, 0x54, 0, 1, 2, 3});
  if (!device) {
    return 0;
  }
  auto& net = **device;
  if (!net.activate(ActivateContext{&memory, queues, &interrupt, 0})) {
    return 0;
  }
  net.processTx();
  net.processRx();
  net.notify(1);
  net.notify(0);
  if (net.stats().rx_frames.load() > sent) {
    __builtin_trap();
  }
  std::vector<uint8_t> out(128 * 1024);
  uint64_t written = 0;
  for (;;) {
    ssize_t n = ::recv(peer.get(), out.data(), out.size(), MSG_DONTWAIT);
    if (n < 0) {
      break;
    }
    if (n < static_cast<ssize_t>(net::kHdrSize) ||
        n > static_cast<ssize_t>(net::kMaxFrameWithHdr)) {
      __builtin_trap();
    }
    ++written;
  }
  if (written != net.stats().tx_frames.load()) {
    __builtin_trap();
  }
  net.reset();
  return 0;
}
