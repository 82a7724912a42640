// SPDX-License-Identifier: Apache-2.0
// The agent's cgroup v2 stats as containerd's cgroups v2 Metrics inside the Stats Any.
#include <cstdint>
#include <limits>

#include <gtest/gtest.h>

#include "shim/metrics.h"

namespace nv::shim {
namespace {

namespace agentpb = nanovisor::agent::v1;
namespace v2 = nanovisor::containerd::cgroups::v2;

constexpr uint64_t kVmBytes = 256ull << 20;  // a 256 MiB VM

agentpb::StatsResponse sample() {
  agentpb::StatsResponse s;
  s.mutable_cpu()->set_usage_usec(1500);
  s.mutable_cpu()->set_user_usec(1000);
  s.mutable_cpu()->set_system_usec(500);
  s.mutable_memory()->set_usage_bytes(3 << 20);
  s.mutable_memory()->set_limit_bytes(64 << 20);
  s.mutable_memory()->set_oom_kills(2);
  s.mutable_pids()->set_current(4);
  s.mutable_pids()->set_limit(100);
  s.mutable_io()->set_read_bytes(4096);
  s.mutable_io()->set_write_bytes(8192);
  return s;
}

TEST(Metrics, AgentStats_MapOntoCgroupsV2Fields) {
  v2::Metrics m = metricsFromAgent(sample(), kVmBytes);
  EXPECT_EQ(m.pids().current(), 4u);
  EXPECT_EQ(m.pids().limit(), 100u);
  EXPECT_EQ(m.cpu().usage_usec(), 1500u);
  EXPECT_EQ(m.cpu().user_usec(), 1000u);
  EXPECT_EQ(m.cpu().system_usec(), 500u);
  EXPECT_EQ(m.memory().usage(), 3u << 20);
  EXPECT_EQ(m.memory().usage_limit(), 64u << 20);
  EXPECT_EQ(m.memory_events().oom_kill(), 2u);
  ASSERT_EQ(m.io().usage_size(), 1);
  EXPECT_EQ(m.io().usage(0).rbytes(), 4096u);
  EXPECT_EQ(m.io().usage(0).wbytes(), 8192u);
}

TEST(Metrics, UnlimitedMemory_ReportsTheVmSizeAsLimit) {
  auto s = sample();
  s.mutable_memory()->set_limit_bytes(0);  // memory.max = max in the guest
  EXPECT_EQ(metricsFromAgent(s, kVmBytes).memory().usage_limit(), kVmBytes);
}

TEST(Metrics, LimitAboveTheVmSize_ReportsTheVmSize) {
  auto s = sample();
  s.mutable_memory()->set_limit_bytes(std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(metricsFromAgent(s, kVmBytes).memory().usage_limit(), kVmBytes);
}

TEST(Metrics, EmptyStats_StillCarryEverySubMessage) {
  // ctr dereferences cpu/memory whenever present: they are always there, zeros or not.
  v2::Metrics m = metricsFromAgent(agentpb::StatsResponse(), kVmBytes);
  EXPECT_TRUE(m.has_pids());
  EXPECT_TRUE(m.has_cpu());
  EXPECT_TRUE(m.has_memory());
  EXPECT_EQ(m.io().usage_size(), 0);
}

TEST(Metrics, StatsResponse_IsAnAnyWithTheBareCgroupsV2TypeUrl) {
  auto response = statsResponse(metricsFromAgent(sample(), kVmBytes));
  EXPECT_EQ(response.stats().type_url(), "io.containerd.cgroups.v2.Metrics");
  v2::Metrics back;
  ASSERT_TRUE(back.ParseFromString(response.stats().value()));
  EXPECT_EQ(back.memory().usage(), 3u << 20);
}

TEST(Metrics, WireNumbers_MatchContainerdsMetricsProto) {
  // Metrics.memory = 4, MemoryStat.usage = 32 (varint): tag bytes 0x22 then 0x80 0x02.
  v2::Metrics m;
  m.mutable_memory()->set_usage(1);
  const std::string bytes = m.SerializeAsString();
  ASSERT_EQ(bytes.size(), 5u);
  EXPECT_EQ(static_cast<uint8_t>(bytes[0]), 0x22);
  EXPECT_EQ(static_cast<uint8_t>(bytes[2]), 0x80);
  EXPECT_EQ(static_cast<uint8_t>(bytes[3]), 0x02);
}

}  // namespace
}  // namespace nv::shim
