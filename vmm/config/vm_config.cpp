// SPDX-License-Identifier: Apache-2.0
// VmConfig validation.
#include "vmm/config/vm_config.h"

#include <fmt/format.h>

namespace nv::vmm {

Result<void> VmConfig::validate() const {
  if (kernel.empty()) {
    return fail(Errc::kInvalidArgument, "--kernel is required");
  }
  if (cpus == 0 || cpus > kMaxCpus) {
    return fail(Errc::kInvalidArgument, fmt::format("--cpus {} outside 1..{}", cpus, kMaxCpus));
  }
  if (memory_mib < kMinMemoryMib || memory_mib > kMaxMemoryMib) {
    return fail(Errc::kInvalidArgument, fmt::format("--memory {} MiB outside {}..{}", memory_mib,
                                                    kMinMemoryMib, kMaxMemoryMib));
  }
  if (disks.size() > 8) {
    return fail(Errc::kInvalidArgument, "at most 8 disks");
  }
  if (vsock_uds && vsock_uds->size() >= 100) {
    return fail(Errc::kInvalidArgument, "--vsock-uds path too long for a Unix socket");
  }
  return {};
}

Result<DiskConfig> VmConfig::parseDisk(const std::string& spec) {
  DiskConfig disk;
  auto comma = spec.find(',');
  disk.path = spec.substr(0, comma);
  while (comma != std::string::npos) {
    size_t next = spec.find(',', comma + 1);
    std::string option = spec.substr(comma + 1, next == std::string::npos ? next : next - comma - 1);
    comma = next;
    if (option == "ro") {
      disk.read_only = true;
    } else if (option == "rw") {
      disk.read_only = false;
    } else if (option.rfind("id=", 0) == 0) {
      disk.id = option.substr(3);
      if (disk.id.empty() || disk.id.size() > 20) {
        return fail(Errc::kInvalidArgument,
                    fmt::format("--disk id '{}' must be 1-20 bytes (virtio-blk ID)", disk.id));
      }
    } else if (option.rfind("bps=", 0) == 0 || option.rfind("iops=", 0) == 0) {
      const bool bytes = option[0] == 'b';
      auto limit = parseRateLimit(option.substr(option.find('=') + 1),
                                  bytes ? RateUnit::kBytes : RateUnit::kOps);
      if (!limit) {
        return fail(Errc::kInvalidArgument,
                    fmt::format("--disk {}: {}", option, limit.error().message()));
      }
      (bytes ? disk.limit.bytes : disk.limit.ops) = *limit;
    } else {
      return fail(Errc::kInvalidArgument,
                  fmt::format("--disk option '{}' is not ro, rw, id=SERIAL, bps=RATE or iops=RATE",
                              option));
    }
  }
  if (disk.path.empty()) {
    return fail(Errc::kInvalidArgument, "--disk needs a path");
  }
  return disk;
}

}  // namespace nv::vmm
