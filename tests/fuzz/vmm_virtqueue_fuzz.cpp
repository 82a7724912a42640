// SPDX-License-Identifier: Apache-2.0
// Fuzzes the split-virtqueue walker: the input is the guest memory holding the rings (and the
// first bytes pick queue size, indices and event-idx), so every ring field is hostile.
#include <cstdint>
#include <cstring>

#include "tests/support/fake_guest_memory.h"
#include "vmm/devices/virtio/queue.h"

using nv::vmm::GuestAddress;
using nv::vmm::testing::FakeGuestMemory;
using nv::vmm::virtio::Queue;

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
  // 64 KiB of RAM (optionally split by a hole at 32 KiB..48 KiB) initialised from the input.
  FakeGuestMemory memory = hole ? FakeGuestMemory(0, 0x8000, 0xC000, 0x4000)
                                : FakeGuestMemory(0x10000);
  for (size_t i = 0; i < size && i < 0x10000; ++i) {
    uint8_t* p = memory.at(i);
    if (p != nullptr) {
      *p = data[i];
    }
  }
  Queue queue(256);
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
  for (int i = 0; i < 512; ++i) {
    uint16_t head = 0;
    auto chain = queue.pop(memory, &head);
    if (!chain || !chain->has_value()) {
      break;
    }
    uint64_t total = 0;
    for (const auto& d : (*chain)->descriptors) {
      // Every returned buffer must be RAM: touch it through the checked interface.
      if (!memory.isRam(d.addr, d.len)) {
        __builtin_trap();
      }
      total += d.len;
    }
    (void)queue.addUsed(memory, (*chain)->head, static_cast<uint32_t>(total));
    (void)queue.needsInterrupt(memory);
  }
  (void)queue.setNotification(memory, true);
  return 0;
}
