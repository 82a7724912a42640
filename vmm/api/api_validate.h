// SPDX-License-Identifier: Apache-2.0
// Validation of control-API requests (proto/vmm_api.proto): pure checks with one-line errors
// that name the field, unit-tested without KVM. The VMM runs them before touching any device.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/result.h"

namespace nv::vmm::api {

inline constexpr uint32_t kDefaultShutdownDeadlineMs = 5000;
inline constexpr uint32_t kMaxShutdownDeadlineMs = 600000;
inline constexpr size_t kMaxPathBytes = 4095;

// `index` names one of `disk_count` disks.
[[nodiscard]] Result<void> validateDiskIndex(uint32_t index, size_t disk_count);

// A replacement backing file: an absolute, normalised path (no "." or ".." components, no NUL,
// at most 4095 bytes) to an existing regular file or block device whose size is a non-zero
// multiple of 512 bytes, with the disk's read-only mode. kInvalidArgument, or kNotFound when
// the file does not exist.
[[nodiscard]] Result<void> validateMediaPath(const std::string& path, bool disk_read_only,
                                             bool request_read_only);

// Shutdown's deadline_ms: 0 means the default; more than 10 minutes is refused.
[[nodiscard]] Result<std::chrono::milliseconds> shutdownDeadline(uint32_t deadline_ms);

}  // namespace nv::vmm::api
