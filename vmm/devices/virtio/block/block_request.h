// SPDX-License-Identifier: Apache-2.0
// virtio-blk request parsing (virtio 1.2 §5.2.6): turns a descriptor chain into a validated
// request or the status the device must answer with. Pure: no I/O, unit-tested and fuzzed.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "vmm/devices/virtio/queue.h"
#include "vmm/memory/guest_memory.h"

namespace nv::vmm::virtio::block {

inline constexpr uint32_t kTypeIn = 0;
inline constexpr uint32_t kTypeOut = 1;
inline constexpr uint32_t kTypeFlush = 4;
inline constexpr uint32_t kTypeGetId = 8;
inline constexpr uint32_t kTypeDiscard = 11;
inline constexpr uint32_t kTypeWriteZeroes = 13;
inline constexpr uint8_t kStatusOk = 0;
inline constexpr uint8_t kStatusIoErr = 1;
inline constexpr uint8_t kStatusUnsupported = 2;
inline constexpr uint64_t kSectorSize = 512;
inline constexpr uint32_t kIdBytes = 20;
inline constexpr uint32_t kMaxDiscardSegments = 16;
inline constexpr uint32_t kMaxDiscardSectors = 0x400000;  // 2 GiB per segment

// A discard / write-zeroes range (virtio_blk_discard_write_zeroes), validated.
struct Segment {
  uint64_t sector;
  uint32_t num_sectors;
  uint32_t flags;
};

// A request that passed validation. `data` are the data buffers in order (device-writable
// for IN/GET_ID, device-readable for OUT/DISCARD/WRITE_ZEROES); `status` is the guest byte
// the device writes the outcome to.
struct Request {
  uint32_t type = 0;
  uint64_t sector = 0;
  std::vector<Descriptor> data;
  uint64_t data_len = 0;
  std::vector<Segment> segments;  // DISCARD / WRITE_ZEROES
  GuestAddress status;
};

// What parse() decided: a request to execute, or a status to write straight back (when the
// chain had a usable status byte), or neither (chain unusable: complete with 0 bytes).
struct ParseResult {
  std::optional<Request> request;
  uint8_t status = kStatusOk;             // when !request
  std::optional<GuestAddress> status_at;  // where to write it, when the chain has one
  const char* error = nullptr;            // why, for the rate-limited log
};

struct DiskGeometry {
  uint64_t capacity_sectors = 0;
  bool read_only = false;
  bool discard = true;
};

// Validates header, type, direction of every buffer, sizes (whole sectors), sector ranges
// against the capacity (overflow-checked) and discard segments.
[[nodiscard]] ParseResult parse(const DescriptorChain& chain, const GuestMemory& memory,
                                const DiskGeometry& disk);

}  // namespace nv::vmm::virtio::block
