// SPDX-License-Identifier: Apache-2.0
// Fuzzes virtio-blk request parsing: descriptor layout and guest bytes come from the input.
#include <cstdint>
#include <cstring>

#include "tests/support/fake_guest_memory.h"
#include "vmm/devices/virtio/block/block_request.h"

using nv::vmm::GuestAddress;
using nv::vmm::testing::FakeGuestMemory;
using namespace nv::vmm::virtio;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) {
    return 0;
  }
  FakeGuestMemory memory(0x4000);
  size_t ndesc = data[0] % 6;
  block::DiskGeometry disk{.capacity_sectors = data[1], .read_only = (data[2] & 1) != 0,
                           .discard = (data[2] & 2) != 0};
  data += 4;
  size -= 4;
  DescriptorChain chain;
  for (size_t i = 0; i < ndesc && size >= 5; ++i) {
    uint16_t addr;
    uint16_t len;
    std::memcpy(&addr, data, 2);
    std::memcpy(&len, data + 2, 2);
    bool writable = (data[4] & 1) != 0;
    data += 5;
    size -= 5;
    uint64_t a = addr % 0x4000;
    uint64_t l = len % (0x4000 - a + 1);  // the walker guarantees buffers are RAM
    chain.descriptors.push_back({GuestAddress(a), static_cast<uint32_t>(l), writable});
  }
  for (size_t i = 0; i < size && i < 0x4000; ++i) {
    *memory.at(i) = data[i];
  }
  auto result = block::parse(chain, memory, disk);
  if (result.request) {
    const auto& req = *result.request;
    if (req.type == block::kTypeIn || req.type == block::kTypeOut) {
      // Validated I/O must fit the disk.
      if (req.sector > disk.capacity_sectors ||
          req.data_len / block::kSectorSize > disk.capacity_sectors - req.sector) {
        __builtin_trap();
      }
    }
  }
  return 0;
}
