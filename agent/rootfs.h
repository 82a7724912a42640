// SPDX-License-Identifier: Apache-2.0
// Agent-side rootfs preparation: read-only layer disks + a writable layer, combined with
// overlayfs under the container's state directory, and volume disks mounted for binding.
#pragma once

#include <string>
#include <vector>

#include "agent/launch_config.h"
#include "common/result.h"
#include "proto/agent.pb.h"

namespace nv::agent {

namespace pb = ::nanovisor::agent::v1;

// What prepareRootfs mounted; teardownRootfs undoes it.
struct PreparedRootfs {
  std::string rootfs;                // the overlay mount point
  std::vector<std::string> mounts;   // in mount order
  std::vector<VolumeBind> volumes;
};

// Finds the device node for `device`: by virtio serial (/sys/block/*/serial), by path, or by
// index (0 = /dev/vda). With `allow_directories` (host mode) a path naming a directory is
// returned as is, to be used as a layer without mounting.
[[nodiscard]] Result<std::string> resolveBlockDevice(const pb::BlockDevice& device,
                                                     bool allow_directories,
                                                     const std::string& sys_block = "/sys/block");

// Mounts the layers read-only, the writable layer and the overlay under `state_dir`.
[[nodiscard]] Result<PreparedRootfs> prepareRootfs(
    const std::string& state_dir, const pb::Rootfs& rootfs,
    const google::protobuf::RepeatedPtrField<pb::VolumeMount>& volumes, bool allow_directories);

// Unmounts everything prepareRootfs mounted (lazily, so a busy mount does not stop it).
void teardownRootfs(const PreparedRootfs& prepared);

}  // namespace nv::agent
