// SPDX-License-Identifier: Apache-2.0
// VmConfig validation.
#include "vmm/config/vm_config.h"

#include <fmt/format.h>

#include <charconv>

#include "vmm/devices/virtio/net/net.h"

namespace nv::vmm {
namespace {

// One of a device's two limits from its option's value: bytes/s (`bytes`) or operations/s
// (requests, frames); an error names the flag and the option.
Result<void> setRateLimit(DiskRateLimit& limit, bool bytes, const std::string& value,
                          const char* flag, const std::string& option) {
  auto parsed = parseRateLimit(value, bytes ? RateUnit::kBytes : RateUnit::kOps);
  if (!parsed) {
    return fail(Errc::kInvalidArgument,
                fmt::format("{} {}: {}", flag, option, parsed.error().message()));
  }
  (bytes ? limit.bytes : limit.ops) = *parsed;
  return {};
}

}  // namespace

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
  if (nets.size() > kMaxNets) {
    return fail(Errc::kInvalidArgument, fmt::format("at most {} --net devices", kMaxNets));
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
      NV_TRY(setRateLimit(disk.limit, option[0] == 'b', option.substr(option.find('=') + 1),
                          "--disk", option));
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

Result<NetConfig> VmConfig::parseNet(const std::string& spec) {
  NetConfig net;
  if (spec.empty()) {
    return fail(Errc::kInvalidArgument, "--net needs tap=NAME or fd=N");
  }
  size_t start = 0;
  bool have_backend = false;
  while (start <= spec.size()) {
    size_t comma = spec.find(',', start);
    std::string option =
        spec.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    start = comma == std::string::npos ? spec.size() + 1 : comma + 1;
    const size_t eq = option.find('=');
    const std::string key = option.substr(0, eq);
    const std::string value = eq == std::string::npos ? "" : option.substr(eq + 1);
    if (eq == std::string::npos && !option.empty()) {
      return fail(Errc::kInvalidArgument,
                  fmt::format("--net option '{}' is not tap=NAME, fd=N, mac=MAC, bps=RATE or "
                              "pps=RATE", option));
    }
    if (key == "tap" || key == "fd") {
      if (have_backend) {
        return fail(Errc::kInvalidArgument,
                    fmt::format("--net {}: give one of tap=NAME or fd=N, once", option));
      }
      have_backend = true;
      if (key == "tap") {
        if (value.empty() || value.size() > 15 || value.find('/') != std::string::npos) {
          return fail(Errc::kInvalidArgument,
                      fmt::format("--net tap={}: want an interface name of 1-15 bytes", value));
        }
        net.tap = value;
      } else {
        int fd = -1;
        auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), fd);
        if (value.empty() || ec != std::errc() || end != value.data() + value.size() || fd < 3) {
          return fail(Errc::kInvalidArgument,
                      fmt::format("--net fd={}: want an open tap descriptor number >= 3", value));
        }
        net.fd = fd;
      }
    } else if (key == "mac") {
      auto mac = virtio::net::parseMac(value);
      if (!mac) {
        return fail(Errc::kInvalidArgument,
                    fmt::format("--net mac={}: {}", value, mac.error().message()));
      }
      net.mac = *mac;
    } else if (key == "bps" || key == "pps") {
      NV_TRY(setRateLimit(net.limit, key == "bps", value, "--net", option));
    } else {
      return fail(Errc::kInvalidArgument,
                  fmt::format("--net option '{}' is not tap=NAME, fd=N, mac=MAC, bps=RATE or "
                              "pps=RATE", option));
    }
  }
  if (!have_backend) {
    return fail(Errc::kInvalidArgument, "--net needs tap=NAME or fd=N");
  }
  return net;
}

}  // namespace nv::vmm
