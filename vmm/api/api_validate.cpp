// SPDX-License-Identifier: Apache-2.0
// Control-API request validation.
#include "vmm/api/api_validate.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include "common/unique_fd.h"

namespace nv::vmm::api {
namespace {

constexpr uint64_t kSector = 512;

}  // namespace

Result<void> validateDiskIndex(uint32_t index, size_t disk_count) {
  if (disk_count == 0) {
    return fail(Errc::kInvalidArgument, fmt::format("disk index {}: the VM has no disks", index));
  }
  if (index >= disk_count) {
    return fail(Errc::kInvalidArgument,
                fmt::format("disk index {} out of range: the VM has {} disk{} (0..{})", index,
                            disk_count, disk_count == 1 ? "" : "s", disk_count - 1));
  }
  return {};
}

Result<void> validateMediaPath(const std::string& path, bool disk_read_only,
                               bool request_read_only) {
  if (path.empty()) {
    return fail(Errc::kInvalidArgument, "path is empty");
  }
  if (path.size() > kMaxPathBytes) {
    return fail(Errc::kInvalidArgument,
                fmt::format("path is {} bytes, longer than {}", path.size(), kMaxPathBytes));
  }
  if (path.find('\0') != std::string::npos) {
    return fail(Errc::kInvalidArgument, "path contains a NUL byte");
  }
  if (path.front() != '/') {
    return fail(Errc::kInvalidArgument, fmt::format("path '{}' is not absolute", path));
  }
  // Components: no "." or "..", so the path says plainly which file it names.
  for (size_t start = 1; start <= path.size();) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) {
      end = path.size();
    }
    std::string part = path.substr(start, end - start);
    if (part == "." || part == "..") {
      return fail(Errc::kInvalidArgument,
                  fmt::format("path '{}' has a '{}' component; give a normalised path", path,
                              part));
    }
    start = end + 1;
  }
  if (disk_read_only != request_read_only) {
    return fail(Errc::kInvalidArgument,
                fmt::format("disk is {} and its mode cannot change at runtime; set read_only={}",
                            disk_read_only ? "read-only" : "read-write",
                            disk_read_only ? "true" : "false"));
  }
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) {
      return fail(Errc::kNotFound, fmt::format("{} does not exist", path));
    }
    return failErrno(fmt::format("stat {}", path));
  }
  uint64_t bytes = static_cast<uint64_t>(st.st_size);
  if (S_ISBLK(st.st_mode)) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
      return failErrno(fmt::format("open {}", path));
    }
    off_t end = ::lseek(fd.get(), 0, SEEK_END);
    if (end < 0) {
      return failErrno(fmt::format("size of {}", path));
    }
    bytes = static_cast<uint64_t>(end);
  } else if (!S_ISREG(st.st_mode)) {
    return fail(Errc::kInvalidArgument,
                fmt::format("{} is not a regular file or block device", path));
  }
  if (bytes == 0) {
    return fail(Errc::kInvalidArgument, fmt::format("{} is empty", path));
  }
  if (bytes % kSector != 0) {
    return fail(Errc::kInvalidArgument,
                fmt::format("{} is {} bytes, not a multiple of 512", path, bytes));
  }
  return {};
}

Result<std::chrono::milliseconds> shutdownDeadline(uint32_t deadline_ms) {
  if (deadline_ms == 0) {
    return std::chrono::milliseconds(kDefaultShutdownDeadlineMs);
  }
  if (deadline_ms > kMaxShutdownDeadlineMs) {
    return fail(Errc::kInvalidArgument,
                fmt::format("deadline_ms {} is more than {} (10 minutes)", deadline_ms,
                            kMaxShutdownDeadlineMs));
  }
  return std::chrono::milliseconds(deadline_ms);
}

}  // namespace nv::vmm::api
