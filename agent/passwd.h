// SPDX-License-Identifier: Apache-2.0
// Resolves container users and groups from its own /etc/passwd and /etc/group (a static
// binary cannot use NSS, and the container's names are what count anyway).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace nv::agent {

struct ResolvedUser {
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<uint32_t> additional_gids;  // groups listing the user by name in /etc/group
  std::string home;                       // empty when unknown
};

// Resolves "name", "uid", "name:group", "uid:gid" (any mix) against the contents of
// /etc/passwd and /etc/group. A numeric uid not in passwd is fine (gid 0 unless given); a
// name that is not there is an error naming it.
[[nodiscard]] Result<ResolvedUser> resolveUser(std::string_view user, std::string_view passwd,
                                               std::string_view group);

// Reads the file at `path`, at most `max_bytes`; a missing file reads as empty.
[[nodiscard]] std::string readSmallFile(const std::string& path, size_t max_bytes = 1 << 20);

}  // namespace nv::agent
