// SPDX-License-Identifier: Apache-2.0
// Secrets (CreateContainerRequest.secrets): written into a tmpfs of their own in the guest and
// bind-mounted read-only at /run/secrets in the container, each file mode 0400 owned by the
// container's user. Secret volumes (CreateContainerRequest.secret_volumes, Kubernetes secret
// and projected volumes): one tmpfs each, bound read-only at the volume's destination, files
// with their own read bits. They live only in guest memory; nothing is logged.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "agent/oci_spec.h"
#include "common/result.h"
#include "proto/agent.pb.h"

namespace nv::agent {

namespace pb = ::nanovisor::agent::v1;

inline constexpr size_t kMaxSecrets = 64;
inline constexpr size_t kMaxSecretBytes = 1 << 20;
inline constexpr size_t kMaxSecretsTotalBytes = 3 << 20;  // below the 4 MiB ttrpc frame limit
inline constexpr size_t kMaxSecretVolumes = 16;
inline constexpr size_t kMaxSecretDepth = 8;  // parts of a secret volume's file path
inline constexpr const char* kSecretsDestination = "/run/secrets";

// Names are file names ([A-Za-z0-9._-], 1-255, not "." or ".."), unique; sizes bounded.
[[nodiscard]] Result<void> validateSecrets(
    const google::protobuf::RepeatedPtrField<pb::Secret>& secrets);

// Destinations absolute, clean, not "/" and unique; each volume's files relative paths of
// file names, unique, none inside another's path; each volume at most kMaxSecrets files;
// with the request's `secrets`, at most kMaxSecretsTotalBytes in all.
[[nodiscard]] Result<void> validateSecretVolumes(
    const google::protobuf::RepeatedPtrField<pb::SecretVolume>& volumes,
    const google::protobuf::RepeatedPtrField<pb::Secret>& secrets);

// The uid:gid that owns the secrets: the spec's numeric ids, or its user name resolved from
// the container's own /etc/passwd and /etc/group, read without leaving `rootfs`.
[[nodiscard]] Result<std::pair<uint32_t, uint32_t>> secretsOwner(const std::string& rootfs,
                                                                 const UserSpec& user);

// Mounts a tmpfs on `dir` (created, 0500) and writes each secret as dir/<name> (directories
// of a path created 0500), owned by uid:gid, mode 0400 or the secret's read bits. On error the
// tmpfs is unmounted again.
[[nodiscard]] Result<void> writeSecrets(
    const std::string& dir, const google::protobuf::RepeatedPtrField<pb::Secret>& secrets,
    uint32_t uid, uint32_t gid);

}  // namespace nv::agent
