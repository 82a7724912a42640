// SPDX-License-Identifier: Apache-2.0
#include "common/rate_limit.h"

#include <gtest/gtest.h>

namespace nv {
namespace {

using namespace std::chrono_literals;
using Clock = TokenBucket::Clock;

TEST(ParseRateLimit, BytesTakeSizesAndAnOptionalBurst) {
  EXPECT_EQ(parseRateLimit("64m", RateUnit::kBytes).value(), (RateLimit{64u << 20, 0}));
  EXPECT_EQ(parseRateLimit("1m:4m", RateUnit::kBytes).value(), (RateLimit{1u << 20, 4u << 20}));
  EXPECT_EQ(parseRateLimit("500:1000", RateUnit::kOps).value(), (RateLimit{500, 1000}));
  EXPECT_EQ(formatRateLimit(RateLimit{500, 1000}), "500:1000");
  EXPECT_EQ(formatRateLimit(RateLimit{500, 0}), "500");
  EXPECT_EQ(formatRateLimit(RateLimit{}), "");
}

TEST(ParseRateLimit, BadInput_NamesTheProblem) {
  for (const char* bad : {"", "0", "fast", "1m:", ":1m", "-5", "1m:1k"}) {
    auto parsed = parseRateLimit(bad, RateUnit::kBytes);
    ASSERT_FALSE(parsed) << bad;
    EXPECT_NE(parsed.error().message().find("rate limit"), std::string::npos) << bad;
  }
  EXPECT_FALSE(parseRateLimit("10k", RateUnit::kOps));  // ops are plain numbers
}

TEST(ParseDiskRateLimit, EmptyIsUnlimited_AnErrorNamesItsSource) {
  auto both = parseDiskRateLimit("1m", "--disk-bps", "100:200", "--disk-iops");
  ASSERT_TRUE(both) << both.error().message();
  EXPECT_EQ(both->bytes, (RateLimit{1u << 20, 0}));
  EXPECT_EQ(both->ops, (RateLimit{100, 200}));
  EXPECT_FALSE(parseDiskRateLimit("", "a", "", "b")->limited());
  auto bad = parseDiskRateLimit("", "--disk-bps", "10k", "--disk-iops");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message().rfind("--disk-iops: invalid rate limit '10k'", 0), 0u)
      << bad.error().message();
}

TEST(TokenBucket, Unlimited_IsAlwaysReady) {
  TokenBucket bucket;
  const auto t0 = Clock::now();
  bucket.consume(UINT64_MAX, t0);
  EXPECT_TRUE(bucket.ready(t0));
  EXPECT_EQ(bucket.wait(t0), 0ns);
}

TEST(TokenBucket, StartsWithTheBurst_ThenRefillsAtTheRate) {
  const auto t0 = Clock::time_point{} + 1h;
  TokenBucket bucket(RateLimit{1000, 4000}, t0);  // starts full: 4000 tokens
  bucket.consume(4000, t0);
  EXPECT_FALSE(bucket.ready(t0));
  EXPECT_GE(bucket.wait(t0), 1ms);  // one token at 1000/s
  EXPECT_LT(bucket.wait(t0), 2ms);
  EXPECT_TRUE(bucket.ready(t0 + 2ms));
  // Saving up stops at the burst: 10 s idle still allows only 4000 before waiting.
  bucket.consume(1, t0 + 2ms);
  const auto t1 = t0 + 10s;
  bucket.consume(4000, t1);
  EXPECT_FALSE(bucket.ready(t1));
}

TEST(TokenBucket, ABigRequestGoesThroughAndLeavesADebt) {
  const auto t0 = Clock::time_point{} + 1h;
  TokenBucket bucket(RateLimit{1000, 0}, t0);  // burst = one second's worth
  ASSERT_TRUE(bucket.ready(t0));
  bucket.consume(3000, t0);  // 2000 in debt
  EXPECT_GT(bucket.wait(t0 + 1s), 1000ms);  // 1000 in debt + one token
  EXPECT_LE(bucket.wait(t0 + 1s), 1002ms);
  EXPECT_FALSE(bucket.ready(t0 + 1999ms));
  EXPECT_TRUE(bucket.ready(t0 + 2002ms));
}

TEST(TokenBucket, OverALongRun_TheRateHolds) {
  auto now = Clock::time_point{} + 1h;
  const auto start = now;
  TokenBucket bucket(RateLimit{1u << 20, 1u << 20}, now);  // 1 MiB/s, 1 MiB burst
  uint64_t served = 0;
  while (served < (64u << 20)) {  // 64 MiB in 64 KiB requests
    now += bucket.wait(now);
    ASSERT_TRUE(bucket.ready(now));
    bucket.consume(64u << 10, now);
    served += 64u << 10;
  }
  const double seconds = std::chrono::duration<double>(now - start).count();
  EXPECT_NEAR(seconds, 63.0, 0.1);  // the first MiB is the burst
}

TEST(DiskLimiter, TheStricterBucketDecides) {
  const auto t0 = Clock::time_point{} + 1h;
  DiskLimiter limiter(DiskRateLimit{RateLimit{1u << 30, 0}, RateLimit{10, 0}}, t0);
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(limiter.ready(t0));
    limiter.consume(512, t0);
  }
  EXPECT_FALSE(limiter.ready(t0));  // 10 ops/s used up, bytes still plenty
  EXPECT_GT(limiter.wait(t0), 99ms);
  EXPECT_TRUE(limiter.ready(t0 + 101ms));
}

}  // namespace
}  // namespace nv
