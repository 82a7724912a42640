// SPDX-License-Identifier: Apache-2.0
// Task Stats: the guest agent's cgroup v2 numbers (proto/agent.proto StatsResponse) as
// containerd's cgroup v2 Metrics (proto/cgroups_metrics.proto), the message `ctr task metrics`
// and CRI's ListContainerStats decode. Pure; unit-tested.
#pragma once

#include <cstdint>
#include <string>

#include "proto/agent.pb.h"
#include "proto/cgroups_metrics.pb.h"
#include "proto/containerd_shim.pb.h"

namespace nv::shim {

// The bare type URL containerd registers for cgroups v2 metrics (no type.googleapis.com/).
inline constexpr const char* kCgroupsV2MetricsType = "io.containerd.cgroups.v2.Metrics";

// An unlimited memory.max in the guest is bounded by the VM's RAM: usage_limit reports
// `vm_memory_bytes` then (runc would report max uint64), so the number means what it says.
[[nodiscard]] nanovisor::containerd::cgroups::v2::Metrics metricsFromAgent(
    const nanovisor::agent::v1::StatsResponse& stats, uint64_t vm_memory_bytes);

// The StatsResponse containerd expects: the metrics in an Any with the bare type URL.
[[nodiscard]] nanovisor::containerd::StatsResponse statsResponse(
    const nanovisor::containerd::cgroups::v2::Metrics& metrics);

}  // namespace nv::shim
