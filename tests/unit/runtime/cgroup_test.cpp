// SPDX-License-Identifier: Apache-2.0
// The VMM cgroup's sizing (the cgroup itself needs root: tests/e2e/security).
#include "runtime/cgroup.h"

#include <gtest/gtest.h>

namespace nv::runtime {
namespace {

TEST(VmmLimits, Tcg_GuestMemoryPlusOverheadPlusCache) {
  auto limits = vmmLimits(2, 256, true);
  EXPECT_EQ(limits.memory_bytes, (256ull + kVmmOverheadMiB + kTcgCacheMiB) << 20);
  EXPECT_EQ(limits.pids, kVmmMaxTasks);
  EXPECT_EQ(limits.cpu_quota_us, 200000u);
  EXPECT_EQ(limits.cpu_period_us, 100000u);
}

TEST(VmmLimits, Kvm_NoTcgCache) {
  EXPECT_EQ(vmmLimits(1, 512, false).memory_bytes, (512ull + kVmmOverheadMiB) << 20);
}

}  // namespace
}  // namespace nv::runtime
