// SPDX-License-Identifier: Apache-2.0
// virtio-blk over a raw file: preadv/pwritev straight into guest pages.
#include "vmm/devices/virtio/block/block.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "common/logging.h"
#include "common/syscall.h"

namespace nv::vmm::virtio::block {
namespace {

constexpr uint64_t kFeatureRo = 1ULL << 5;
constexpr uint64_t kFeatureBlkSize = 1ULL << 6;
constexpr uint64_t kFeatureFlush = 1ULL << 9;
constexpr uint64_t kFeatureDiscard = 1ULL << 13;
constexpr uint64_t kFeatureWriteZeroes = 1ULL << 14;
constexpr size_t kMaxIov = 1024;

// Full transfer with preadv/pwritev over guest spans; false on error or short I/O.
bool transfer(int fd, bool write, std::vector<std::span<uint8_t>>& spans, uint64_t offset) {
  size_t index = 0;
  while (index < spans.size()) {
    std::vector<iovec> iov;
    for (size_t i = index; i < spans.size() && iov.size() < kMaxIov; ++i) {
      iov.push_back({spans[i].data(), spans[i].size()});
    }
    ssize_t n = retryOnEintr([&] {
      return write ? ::pwritev(fd, iov.data(), static_cast<int>(iov.size()),
                               static_cast<off_t>(offset))
                   : ::preadv(fd, iov.data(), static_cast<int>(iov.size()),
                              static_cast<off_t>(offset));
    });
    if (n <= 0) {
      return false;
    }
    auto done = static_cast<uint64_t>(n);
    offset += done;
    // Advance past fully transferred spans, trim a partial one.
    while (done > 0 && index < spans.size()) {
      if (done >= spans[index].size()) {
        done -= spans[index].size();
        ++index;
      } else {
        spans[index] = spans[index].subspan(static_cast<size_t>(done));
        done = 0;
      }
    }
  }
  return true;
}

// Opens a backing file and measures it in whole sectors.
Result<std::pair<UniqueFd, uint64_t>> openBacking(const std::string& path, bool read_only) {
  UniqueFd fd(::open(path.c_str(), (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC));
  if (!fd) {
    return failErrno(fmt::format("open disk {}", path));
  }
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0) {
    return failErrno(fmt::format("stat disk {}", path));
  }
  uint64_t bytes = static_cast<uint64_t>(st.st_size);
  if (S_ISBLK(st.st_mode)) {
    off_t end = ::lseek(fd.get(), 0, SEEK_END);
    if (end < 0) {
      return failErrno(fmt::format("size of block device {}", path));
    }
    bytes = static_cast<uint64_t>(end);
  } else if (!S_ISREG(st.st_mode)) {
    return fail(Errc::kInvalidArgument, fmt::format("disk {} is not a file or block device", path));
  }
  return std::pair<UniqueFd, uint64_t>(std::move(fd), bytes / kSectorSize);
}

}  // namespace

Result<std::shared_ptr<Block>> Block::open(const std::string& path, bool read_only,
                                           std::string id, const DiskRateLimit& limit) {
  NV_ASSIGN_OR_RETURN(auto backing, openBacking(path, read_only));
  std::shared_ptr<Block> block(
      new Block(std::move(backing.first), backing.second, read_only, std::move(id), path));
  if (limit.limited()) {
    block->throttle_timer_.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
    if (!block->throttle_timer_) {
      return failErrno("timerfd for the rate limiter of disk " + path);
    }
    block->limiter_ = DiskLimiter(limit, TokenBucket::Clock::now());
  }
  return block;
}

void Block::wakeAfter(std::chrono::nanoseconds delay) {
  const auto ns = std::max<int64_t>(delay.count(), 1);
  itimerspec when{};
  when.it_value.tv_sec = ns / 1'000'000'000;
  when.it_value.tv_nsec = ns % 1'000'000'000;
  (void)::timerfd_settime(throttle_timer_.get(), 0, &when, nullptr);
}

std::string Block::path() {
  std::lock_guard lock(path_mutex_);
  return path_;
}

Result<uint64_t> Block::replaceMedia(const std::string& path, bool read_only) {
  if (read_only != geometry_.read_only) {
    return fail(Errc::kInvalidArgument,
                fmt::format("disk is {}; the replacement must be too (read_only={})",
                            geometry_.read_only ? "read-only" : "read-write",
                            geometry_.read_only ? "true" : "false"));
  }
  NV_ASSIGN_OR_RETURN(auto backing, openBacking(path, read_only));
  if (backing.second == 0) {
    return fail(Errc::kInvalidArgument,
                fmt::format("disk {} is smaller than one 512-byte sector", path));
  }
  {
    std::lock_guard lock(mutex_);  // after the request in progress
    fd_ = std::move(backing.first);
    geometry_.capacity_sectors = backing.second;
    capacity_.store(backing.second);
  }
  {
    std::lock_guard lock(path_mutex_);
    path_ = path;
  }
  ++stats_.media_changes;
  return backing.second;
}

uint64_t Block::deviceFeatures() const {
  uint64_t features = kFeatureVersion1 | kFeatureEventIdx | kFeatureFlush | kFeatureBlkSize;
  if (geometry_.read_only) {
    features |= kFeatureRo;
  } else {
    features |= kFeatureDiscard | kFeatureWriteZeroes;
  }
  return features;
}

void Block::readConfig(uint64_t offset, std::span<uint8_t> data) {
  // virtio_blk_config: capacity @0, blk_size @20, num_queues @34, discard fields @36..47,
  // write-zeroes fields @48..56.
  uint8_t config[60] = {};
  auto put32 = [&](size_t at, uint32_t v) { std::memcpy(config + at, &v, 4); };
  const uint64_t capacity = capacity_.load();
  std::memcpy(config, &capacity, 8);
  put32(20, static_cast<uint32_t>(kSectorSize));
  uint16_t queues = 1;
  std::memcpy(config + 34, &queues, 2);
  put32(36, kMaxDiscardSectors);
  put32(40, kMaxDiscardSegments);
  put32(44, 1);
  put32(48, kMaxDiscardSectors);
  put32(52, kMaxDiscardSegments);
  config[56] = 1;
  for (size_t i = 0; i < data.size(); ++i) {
    data[i] = offset + i < sizeof(config) ? config[offset + i] : 0;
  }
}

Result<void> Block::activate(ActivateContext context) {
  std::lock_guard lock(mutex_);
  if (context.queues.size() != 1 || !context.queues[0].ready()) {
    return fail(Errc::kInvalidArgument, "virtio-blk activated without its request queue");
  }
  context_ = context;
  active_ = true;
  broken_ = false;
  return {};
}

void Block::reset() {
  std::lock_guard lock(mutex_);
  active_ = false;
  context_ = ActivateContext{};
}

void Block::notify(uint32_t index) {
  if (index == 0) {
    processQueue();
  }
}

void Block::processQueue(TokenBucket::Clock::time_point now) {
  static auto logger = log::get("vmm");
  std::lock_guard lock(mutex_);
  if (!active_ || broken_) {
    return;
  }
  const GuestMemory& memory = *context_.memory;
  auto admit = [&] {
    if (limiter_.ready(now)) {
      return true;
    }
    ++stats_.throttled;
    wakeAfter(limiter_.wait(now));
    return false;
  };
  auto served = serveRequests(
      context_.queues[0], memory, *context_.interrupt, admit, [&](const DescriptorChain& chain) {
        ++stats_.requests;
        ParseResult parsed = parse(chain, memory, geometry_);
        uint32_t written = 0;
        uint8_t status = parsed.status;
        if (parsed.request) {
          status = execute(*parsed.request, &written);
          parsed.status_at = parsed.request->status;
          limiter_.consume(parsed.request->data_len, now);
        } else {
          limiter_.consume(0, now);  // a bad request still costs an operation
          ++stats_.bad_requests;
          NV_LOG_RATE_LIMITED(logger, spdlog::level::warn, "virtio-blk: bad request: {}",
                              parsed.error != nullptr ? parsed.error : "?");
        }
        if (parsed.status_at) {
          (void)memory.writeObj(*parsed.status_at, status);
          written += 1;
        }
        return written;
      });
  if (!served) {
    // The ring itself is inconsistent: stop touching it until the driver resets us.
    ++stats_.queue_errors;
    broken_ = true;
    NV_LOG_RATE_LIMITED(logger, spdlog::level::warn, "virtio-blk: {}; device needs reset",
                        served.error().message());
    context_.interrupt->markNeedsReset();
  }
}

uint8_t Block::execute(const Request& req, uint32_t* written) {
  const GuestMemory& memory = *context_.memory;
  switch (req.type) {
    case kTypeIn:
    case kTypeOut: {
      std::vector<std::span<uint8_t>> spans;
      for (const Descriptor& d : req.data) {
        if (!memory.hostSpans(d.addr, d.len, spans)) {
          return kStatusIoErr;
        }
      }
      bool write = req.type == kTypeOut;
      if (!transfer(fd_.get(), write, spans, req.sector * kSectorSize)) {
        return kStatusIoErr;
      }
      if (write) {
        stats_.write_bytes += req.data_len;
      } else {
        stats_.read_bytes += req.data_len;
        *written = static_cast<uint32_t>(std::min<uint64_t>(req.data_len, UINT32_MAX));
      }
      return kStatusOk;
    }
    case kTypeFlush:
      if (!geometry_.read_only && ::fdatasync(fd_.get()) != 0) {
        return kStatusIoErr;
      }
      return kStatusOk;
    case kTypeGetId: {
      uint8_t id[kIdBytes] = {};
      std::memcpy(id, id_.data(), std::min<size_t>(id_.size(), kIdBytes));
      uint64_t left = std::min<uint64_t>(kIdBytes, req.data_len);
      uint64_t copied = 0;
      for (const Descriptor& d : req.data) {
        uint64_t chunk = std::min<uint64_t>(d.len, left - copied);
        if (!memory.write(d.addr, std::span<const uint8_t>(id + copied, chunk))) {
          return kStatusIoErr;
        }
        copied += chunk;
        if (copied == left) {
          break;
        }
      }
      *written = static_cast<uint32_t>(copied);
      return kStatusOk;
    }
    case kTypeDiscard:
    case kTypeWriteZeroes:
      for (const Segment& seg : req.segments) {
        int mode = req.type == kTypeDiscard || (seg.flags & 1) != 0
                       ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
                       : FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
        if (::fallocate(fd_.get(), mode, static_cast<off_t>(seg.sector * kSectorSize),
                        static_cast<off_t>(uint64_t{seg.num_sectors} * kSectorSize)) != 0) {
          // Discard is advisory; write-zeroes must zero.
          if (req.type == kTypeWriteZeroes) {
            return kStatusIoErr;
          }
        }
      }
      return kStatusOk;
    default:
      return kStatusUnsupported;
  }
}

}  // namespace nv::vmm::virtio::block
