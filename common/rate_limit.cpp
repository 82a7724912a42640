// SPDX-License-Identifier: Apache-2.0
#include "common/rate_limit.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "common/size.h"

namespace nv {
namespace {

Result<uint64_t> parseAmount(std::string_view text, RateUnit unit) {
  if (unit == RateUnit::kBytes) {
    return parseSize(text);
  }
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    return fail(Errc::kInvalidArgument, "invalid number '" + std::string(text) + "'");
  }
  return value;
}

}  // namespace

Result<RateLimit> parseRateLimit(std::string_view text, RateUnit unit) {
  const std::string_view what = unit == RateUnit::kBytes ? "bytes" : "operations";
  const size_t colon = text.find(':');
  auto rate = parseAmount(text.substr(0, colon), unit);
  if (!rate || *rate == 0) {
    return fail(Errc::kInvalidArgument,
                "invalid rate limit '" + std::string(text) + "' (want " + std::string(what) +
                    " per second above 0, optionally ':BURST')");
  }
  RateLimit limit{*rate, 0};
  if (colon != std::string_view::npos) {
    auto burst = parseAmount(text.substr(colon + 1), unit);
    if (!burst || *burst < *rate) {
      return fail(Errc::kInvalidArgument, "invalid burst in rate limit '" + std::string(text) +
                                              "' (want " + std::string(what) +
                                              ", at least the rate)");
    }
    limit.burst = *burst;
  }
  return limit;
}

Result<DiskRateLimit> parseDiskRateLimit(std::string_view bps, std::string_view bps_source,
                                         std::string_view iops, std::string_view iops_source) {
  DiskRateLimit out;
  auto parse = [](std::string_view text, std::string_view source, RateUnit unit,
                  RateLimit& limit) -> Result<void> {
    if (text.empty()) return {};
    auto parsed = parseRateLimit(text, unit);
    if (!parsed) {
      return fail(Errc::kInvalidArgument,
                  std::string(source) + ": " + parsed.error().message());
    }
    limit = *parsed;
    return {};
  };
  NV_TRY(parse(bps, bps_source, RateUnit::kBytes, out.bytes));
  NV_TRY(parse(iops, iops_source, RateUnit::kOps, out.ops));
  return out;
}

std::string formatRateLimit(const RateLimit& limit) {
  if (!limit.limited()) {
    return "";
  }
  std::string out = std::to_string(limit.rate);
  if (limit.burst != 0) {
    out += ":" + std::to_string(limit.burst);
  }
  return out;
}

TokenBucket::TokenBucket(RateLimit limit, Clock::time_point now)
    : rate_(static_cast<double>(limit.rate)),
      capacity_(static_cast<double>(limit.bucketSize())),
      tokens_(capacity_),
      last_(now) {}

void TokenBucket::refill(Clock::time_point now) {
  if (now <= last_) {
    return;
  }
  const double seconds = std::chrono::duration<double>(now - last_).count();
  tokens_ = std::min(capacity_, tokens_ + seconds * rate_);
  last_ = now;
}

bool TokenBucket::ready(Clock::time_point now) {
  if (rate_ == 0) {
    return true;
  }
  refill(now);
  return tokens_ >= 1;
}

void TokenBucket::consume(uint64_t tokens, Clock::time_point now) {
  if (rate_ == 0) {
    return;
  }
  refill(now);
  tokens_ -= static_cast<double>(tokens);
}

std::chrono::nanoseconds TokenBucket::wait(Clock::time_point now) {
  if (ready(now)) {
    return std::chrono::nanoseconds(0);
  }
  // Until the debt is paid and one whole token saved.
  const double seconds = (1 - tokens_) / rate_;
  return std::chrono::nanoseconds(static_cast<int64_t>(std::ceil(seconds * 1e9)) + 1);
}

}  // namespace nv
