// SPDX-License-Identifier: Apache-2.0
// Small files for a container (CreateContainerRequest.files: CRI's /etc/hosts, resolv.conf,
// hostname): copies written under the container's state directory and bound at their
// destinations.
#pragma once

#include <string>
#include <vector>

#include "agent/launch_config.h"
#include "common/result.h"
#include "proto/agent.pb.h"

namespace nv::agent {

namespace pb = ::nanovisor::agent::v1;

inline constexpr size_t kMaxFiles = 16;
inline constexpr size_t kMaxFileBytes = 64 << 10;

// Destinations are absolute, clean (no "." or ".." parts, no empty parts) and not "/",
// unique; sizes bounded.
[[nodiscard]] Result<void> validateFiles(const google::protobuf::RepeatedPtrField<pb::File>& files);

// Writes each file as dir/<index> (dir created, 0755; files 0644) and returns the binds.
[[nodiscard]] Result<std::vector<VolumeBind>> writeFiles(
    const std::string& dir, const google::protobuf::RepeatedPtrField<pb::File>& files);

}  // namespace nv::agent
