// SPDX-License-Identifier: Apache-2.0
// Fuzzes virtio-rng request handling: the input is the guest memory holding the rings and
// buffers (the first bytes pick queue size, indices and a memory hole), so every ring field and
// descriptor is hostile. The device must write only into guest RAM and at most 64 KiB per
// request.
#include <cstdint>
#include <cstring>
#include <vector>

#include "tests/support/fake_guest_memory.h"
#include "tests/support/fake_irq_line.h"
#include "vmm/devices/virtio/rng/rng.h"

using nv::vmm::GuestAddress;
using nv::vmm::testing::FakeGuestMemory;
using nv::vmm::testing::FakeIrqLine;
using namespace nv::vmm::virtio;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 8) {
    return 0;
  }
  uint16_t qsize = static_cast<uint16_t>(1U << (data[0] % 9));  // 1..256
  uint16_t start;
  std::memcpy(&start, data + 1, 2);
  bool event_idx = (data[3] & 1) != 0;
  bool hole = (data[3] & 2) != 0;
  data += 8;
  size -= 8;
  FakeGuestMemory memory = hole ? FakeGuestMemory(0, 0x8000, 0xC000, 0x14000)
                                : FakeGuestMemory(0x20000);
  for (size_t i = 0; i < size && i < 0x20000; ++i) {
    uint8_t* p = memory.at(i);
    if (p != nullptr) {
      *p = data[i];
    }
  }
  std::vector<Queue> queues;
  queues.emplace_back(rng::Rng::kQueueSize);
  Queue& queue = queues[0];
  queue.setSize(qsize);
  queue.setDescTable(GuestAddress(0));
  queue.setAvailRing(GuestAddress(0x1000));
  queue.setUsedRing(GuestAddress(0x2000));
  queue.setEventIdx(event_idx);
  queue.setIndices(start, start);
  if (!queue.validate(memory)) {
    return 0;
  }
  queue.setReady(true);
  FakeIrqLine irq;
  InterruptState interrupt(&irq);
  rng::Rng device;
  if (!device.activate(ActivateContext{&memory, queues, &interrupt, kFeatureEventIdx})) {
    return 0;
  }
  device.processQueue();
  const uint64_t requests = device.stats().requests.load();
  if (device.stats().bytes.load() > requests * rng::Rng::kMaxBytesPerRequest) {
    __builtin_trap();
  }
  device.reset();
  return 0;
}
