// SPDX-License-Identifier: Apache-2.0
// Fuzzes vsock TX packet validation and RX writing over guest memory from the input.
#include <cstdint>
#include <cstring>
#include <vector>

#include "tests/support/fake_guest_memory.h"
#include "vmm/devices/virtio/vsock/packet.h"

using nv::vmm::GuestAddress;
using nv::vmm::testing::FakeGuestMemory;
using namespace nv::vmm::virtio;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) {
    return 0;
  }
  FakeGuestMemory memory(0x20000);
  size_t ndesc = data[0] % 5;
  data += 2;
  size -= 2;
  DescriptorChain chain;
  for (size_t i = 0; i < ndesc && size >= 5; ++i) {
    uint16_t addr;
    uint16_t len;
    std::memcpy(&addr, data, 2);
    std::memcpy(&len, data + 2, 2);
    bool writable = (data[4] & 1) != 0;
    data += 5;
    size -= 5;
    uint64_t a = addr;
    chain.descriptors.push_back({GuestAddress(a), len, writable});  // inside 0x20000 always
  }
  for (size_t i = 0; i < size && i < 0x20000; ++i) {
    *memory.at(i) = data[i];
  }
  auto packet = vsock::parseTx(chain, memory, 3);
  if (packet) {
    std::vector<uint8_t> payload(packet->header.len);
    if (!vsock::readPayload(*packet, memory, payload)) {
      __builtin_trap();  // validated payloads must be readable
    }
    vsock::Credit credit(65536);
    credit.updatePeer(packet->header.buf_alloc, packet->header.fwd_cnt);
    (void)credit.peerFree();
    (void)vsock::writeRx(chain, memory, packet->header, payload);
  }
  return 0;
}
