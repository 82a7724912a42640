// SPDX-License-Identifier: Apache-2.0
// Rate limits for what a guest can make the host do (disk bytes and operations): token
// buckets with a burst, as Firecracker puts on its devices.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace nv {

// `rate` tokens per second, at most `burst` saved up. rate 0 = unlimited.
struct RateLimit {
  uint64_t rate = 0;
  uint64_t burst = 0;  // 0: one second's worth (= rate)

  [[nodiscard]] bool limited() const { return rate != 0; }
  [[nodiscard]] uint64_t bucketSize() const { return burst != 0 ? burst : rate; }
  bool operator==(const RateLimit&) const = default;
};

// What a disk may do per second: bytes moved and requests served.
struct DiskRateLimit {
  RateLimit bytes;
  RateLimit ops;

  [[nodiscard]] bool limited() const { return bytes.limited() || ops.limited(); }
  bool operator==(const DiskRateLimit&) const = default;
};

// "RATE[:BURST]". Byte rates take sizes (64m, 512k; powers of 1024), op rates plain numbers.
// A burst below the rate is refused (a request could never be served at full speed).
enum class RateUnit { kBytes, kOps };
[[nodiscard]] Result<RateLimit> parseRateLimit(std::string_view text, RateUnit unit);
// A disk's two limits from their texts ("" = unlimited), as the CLI's flags and the shim's
// annotations give them; an error starts with the failing text's `*_source` (a flag, an
// annotation) and then parseRateLimit's message.
[[nodiscard]] Result<DiskRateLimit> parseDiskRateLimit(std::string_view bps,
                                                       std::string_view bps_source,
                                                       std::string_view iops,
                                                       std::string_view iops_source);
// The inverse of parseRateLimit, for arguments and inspect output ("" when unlimited).
[[nodiscard]] std::string formatRateLimit(const RateLimit& limit);

// A token bucket that lets a request in while the bucket holds a token and charges its real
// cost afterwards, which may leave the bucket in debt: requests of any size get through, and
// over time the rate holds. Not thread-safe; the caller's device thread owns it.
class TokenBucket {
 public:
  using Clock = std::chrono::steady_clock;

  TokenBucket() = default;  // unlimited
  TokenBucket(RateLimit limit, Clock::time_point now);

  // Whether a request may start now.
  [[nodiscard]] bool ready(Clock::time_point now);
  // Charges `tokens` (the bucket may go below zero).
  void consume(uint64_t tokens, Clock::time_point now);
  // How long until ready() turns true (zero when it is).
  [[nodiscard]] std::chrono::nanoseconds wait(Clock::time_point now);

 private:
  void refill(Clock::time_point now);

  double rate_ = 0;      // tokens per second; 0 = unlimited
  double capacity_ = 0;
  double tokens_ = 0;
  Clock::time_point last_{};
};

// Both buckets of a disk.
class DiskLimiter {
 public:
  DiskLimiter() = default;
  DiskLimiter(const DiskRateLimit& limit, TokenBucket::Clock::time_point now)
      : bytes_(limit.bytes, now), ops_(limit.ops, now) {}

  [[nodiscard]] bool ready(TokenBucket::Clock::time_point now) {
    return bytes_.ready(now) && ops_.ready(now);
  }
  void consume(uint64_t bytes, TokenBucket::Clock::time_point now) {
    bytes_.consume(bytes, now);
    ops_.consume(1, now);
  }
  [[nodiscard]] std::chrono::nanoseconds wait(TokenBucket::Clock::time_point now) {
    return std::max(bytes_.wait(now), ops_.wait(now));
  }

 private:
  TokenBucket bytes_;
  TokenBucket ops_;
};

}  // namespace nv
