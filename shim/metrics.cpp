// SPDX-License-Identifier: Apache-2.0
#include "shim/metrics.h"

namespace nv::shim {

namespace v2 = nanovisor::containerd::cgroups::v2;

v2::Metrics metricsFromAgent(const nanovisor::agent::v1::StatsResponse& stats,
                             uint64_t vm_memory_bytes) {
  v2::Metrics m;
  // ctr and CRI read these sub-messages whenever they are present: always fill all of them.
  m.mutable_pids()->set_current(stats.pids().current());
  m.mutable_pids()->set_limit(stats.pids().limit());
  m.mutable_cpu()->set_usage_usec(stats.cpu().usage_usec());
  m.mutable_cpu()->set_user_usec(stats.cpu().user_usec());
  m.mutable_cpu()->set_system_usec(stats.cpu().system_usec());
  auto* memory = m.mutable_memory();
  memory->set_usage(stats.memory().usage_bytes());
  const uint64_t limit = stats.memory().limit_bytes();
  memory->set_usage_limit(limit != 0 && (vm_memory_bytes == 0 || limit < vm_memory_bytes)
                              ? limit
                              : vm_memory_bytes);
  m.mutable_memory_events()->set_oom_kill(stats.memory().oom_kills());
  if (stats.io().read_bytes() != 0 || stats.io().write_bytes() != 0) {
    auto* entry = m.mutable_io()->add_usage();
    entry->set_rbytes(stats.io().read_bytes());
    entry->set_wbytes(stats.io().write_bytes());
  }
  return m;
}

nanovisor::containerd::StatsResponse statsResponse(const v2::Metrics& metrics) {
  nanovisor::containerd::StatsResponse response;
  response.mutable_stats()->set_type_url(kCgroupsV2MetricsType);
  response.mutable_stats()->set_value(metrics.SerializeAsString());
  return response;
}

}  // namespace nv::shim
