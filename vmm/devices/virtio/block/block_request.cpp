// SPDX-License-Identifier: Apache-2.0
// virtio-blk request validation.
#include "vmm/devices/virtio/block/block_request.h"

namespace nv::vmm::virtio::block {
namespace {

struct Header {
  uint32_t type;
  uint32_t reserved;
  uint64_t sector;
};
static_assert(sizeof(Header) == 16);
static_assert(sizeof(Segment) == 16);

ParseResult reject(uint8_t status, std::optional<GuestAddress> at, const char* why) {
  ParseResult r;
  r.status = status;
  r.status_at = at;
  r.error = why;
  return r;
}

// [sector, sector + count) inside the disk, without overflow.
bool inRange(uint64_t sector, uint64_t count, uint64_t capacity) {
  return sector <= capacity && count <= capacity - sector;
}

}  // namespace

ParseResult parse(const DescriptorChain& chain, const GuestMemory& memory,
                  const DiskGeometry& disk) {
  const auto& descs = chain.descriptors;
  if (descs.empty()) {
    return reject(kStatusIoErr, std::nullopt, "empty chain");
  }
  // The status byte is the last byte of the last descriptor, which must be device-writable.
  const Descriptor& last = descs.back();
  if (!last.device_writable || last.len == 0) {
    return reject(kStatusIoErr, std::nullopt, "no device-writable status byte");
  }
  // Bounds: the walker checked [addr, addr + len) is RAM, so addr + len - 1 is too.
  GuestAddress status_at = last.addr.unchecked(last.len - 1);
  const Descriptor& first = descs.front();
  if (descs.size() < 2 || first.device_writable || first.len < sizeof(Header)) {
    return reject(kStatusIoErr, status_at, "request header missing or too short");
  }
  auto header = memory.readObj<Header>(first.addr);
  if (!header) {
    return reject(kStatusIoErr, status_at, "request header unreadable");
  }
  Request req;
  req.type = header->type;
  req.sector = header->sector;
  req.status = status_at;
  // Data: everything between the header and the status byte.
  for (size_t i = 1; i < descs.size(); ++i) {
    Descriptor d = descs[i];
    if (i + 1 == descs.size()) {
      d.len -= 1;  // the status byte
      if (d.len == 0) {
        break;
      }
    }
    req.data.push_back(d);
    req.data_len += d.len;
  }
  if (first.len > sizeof(Header)) {
    return reject(kStatusIoErr, status_at, "request header descriptor carries data");
  }
  auto allData = [&](bool writable) {
    for (const Descriptor& d : req.data) {
      if (d.device_writable != writable) {
        return false;
      }
    }
    return true;
  };
  switch (req.type) {
    case kTypeIn:
    case kTypeOut: {
      bool in = req.type == kTypeIn;
      if (!allData(in)) {
        return reject(kStatusIoErr, status_at, "data buffer has the wrong direction");
      }
      if (req.data_len % kSectorSize != 0) {
        return reject(kStatusIoErr, status_at, "data length is not a multiple of 512");
      }
      if (!inRange(req.sector, req.data_len / kSectorSize, disk.capacity_sectors)) {
        return reject(kStatusIoErr, status_at, "sector range beyond the end of the disk");
      }
      if (!in && disk.read_only) {
        return reject(kStatusIoErr, status_at, "write to a read-only disk");
      }
      break;
    }
    case kTypeFlush:
      if (disk.read_only) {
        break;  // nothing to flush; report success
      }
      break;
    case kTypeGetId:
      if (!allData(true) || req.data_len < 1) {
        return reject(kStatusIoErr, status_at, "GET_ID without a writable buffer");
      }
      break;
    case kTypeDiscard:
    case kTypeWriteZeroes: {
      if (!disk.discard) {
        return reject(kStatusUnsupported, status_at, "discard not offered");
      }
      if (disk.read_only) {
        return reject(kStatusIoErr, status_at, "discard on a read-only disk");
      }
      if (!allData(false) || req.data_len == 0 || req.data_len % sizeof(Segment) != 0 ||
          req.data_len / sizeof(Segment) > kMaxDiscardSegments) {
        return reject(kStatusIoErr, status_at, "bad discard segment list");
      }
      for (const Descriptor& d : req.data) {
        if (d.len % sizeof(Segment) != 0) {
          return reject(kStatusIoErr, status_at, "discard segment split across buffers");
        }
        for (uint64_t off = 0; off < d.len; off += sizeof(Segment)) {
          auto seg = memory.readObj<Segment>(d.addr.unchecked(off));
          if (!seg) {
            return reject(kStatusIoErr, status_at, "discard segment unreadable");
          }
          if (seg->num_sectors > kMaxDiscardSectors ||
              !inRange(seg->sector, seg->num_sectors, disk.capacity_sectors)) {
            return reject(kStatusIoErr, status_at, "discard segment beyond the disk");
          }
          // Flags: bit 0 = unmap (write zeroes only); other bits reserved.
          if ((seg->flags & ~1U) != 0 || (req.type == kTypeDiscard && seg->flags != 0)) {
            return reject(kStatusUnsupported, status_at, "discard segment with reserved flags");
          }
          req.segments.push_back(*seg);
        }
      }
      break;
    }
    default:
      return reject(kStatusUnsupported, status_at, "unsupported request type");
  }
  ParseResult result;
  result.request = std::move(req);
  return result;
}

}  // namespace nv::vmm::virtio::block
