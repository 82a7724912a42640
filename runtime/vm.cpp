// SPDX-License-Identifier: Apache-2.0
#include "runtime/vm.h"

#include <unistd.h>

#include <fstream>
#include <sstream>

namespace nv::runtime {
namespace {

bool isSafeName(const std::string& s, size_t max_len) {
  if (s.empty() || s.size() > max_len) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return s != "." && s != "..";
}

}  // namespace

Result<void> VmSpec::validate() const {
  if (!isSafeName(id, 64)) {
    return fail(Errc::kInvalidArgument,
                "sandbox id '" + id + "' must be 1-64 characters of [A-Za-z0-9_.-]");
  }
  if (!std::filesystem::is_directory(dir)) {
    return fail(Errc::kNotFound, "sandbox directory " + dir.string() + " does not exist");
  }
  if (kernel.empty() || !std::filesystem::is_regular_file(kernel)) {
    return fail(Errc::kNotFound, "guest kernel " + kernel.string() +
                                     " not found; run 'make kernel' or set kernel in the config");
  }
  if (initramfs.empty() || !std::filesystem::is_regular_file(initramfs)) {
    return fail(Errc::kNotFound, "guest initramfs " + initramfs.string() +
                                     " not found; run 'make initramfs' or set it in the config");
  }
  if (cpus < 1 || cpus > 32) {
    return fail(Errc::kInvalidArgument, "cpus must be 1..32, got " + std::to_string(cpus));
  }
  if (memory_mib < 64 || memory_mib > 65536) {
    return fail(Errc::kInvalidArgument,
                "memory must be 64 MiB..64 GiB, got " + std::to_string(memory_mib) + " MiB");
  }
  for (const auto& disk : disks) {
    if (!std::filesystem::is_regular_file(disk.path)) {
      return fail(Errc::kNotFound, "disk image " + disk.path.string() + " not found");
    }
    if (!isSafeName(disk.serial, 20) || disk.serial.find('.') != std::string::npos) {
      return fail(Errc::kInvalidArgument,
                  "disk serial '" + disk.serial + "' must be 1-20 characters of [A-Za-z0-9_-]");
    }
  }
  if (disk_slots > kMaxDiskSlots) {
    return fail(Errc::kInvalidArgument, "at most " + std::to_string(kMaxDiskSlots) +
                                            " disk slots, got " + std::to_string(disk_slots));
  }
  for (const auto& share : shares) {
    if (!share.host_dir.is_absolute() || !std::filesystem::is_directory(share.host_dir)) {
      return fail(Errc::kNotFound,
                  "shared directory " + share.host_dir.string() + " is not an existing directory");
    }
    if (!isSafeName(share.tag, 20) || share.tag.find('.') != std::string::npos) {
      return fail(Errc::kInvalidArgument,
                  "share tag '" + share.tag + "' must be 1-20 characters of [A-Za-z0-9_-]");
    }
  }
  return {};
}

Result<VmStats> processStats(pid_t pid) {
  VmStats stats;
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  if (!status) {
    return fail(Errc::kNotFound, "process " + std::to_string(pid) + " is gone");
  }
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      stats.vmm_rss_bytes = std::stoull(line.substr(6)) * 1024;  // "VmRSS:   1234 kB"
    }
  }
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string content((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  // Fields after the ")" that closes comm: state is field 3; utime 14, stime 15.
  auto close = content.rfind(')');
  if (close != std::string::npos) {
    std::istringstream fields(content.substr(close + 2));
    std::string field;
    uint64_t utime = 0;
    uint64_t stime = 0;
    for (int i = 3; i <= 15 && fields >> field; ++i) {
      if (i == 14) utime = std::stoull(field);
      if (i == 15) stime = std::stoull(field);
    }
    const auto ticks = static_cast<uint64_t>(::sysconf(_SC_CLK_TCK));
    stats.vmm_cpu_usec = (utime + stime) * 1000000 / (ticks == 0 ? 100 : ticks);
  }
  return stats;
}

std::string logTail(const std::filesystem::path& path, size_t lines) {
  std::ifstream in(path);
  std::vector<std::string> all;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) all.push_back(line);
  }
  std::string out;
  for (size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i) {
    if (!out.empty()) out += "; ";
    out += all[i];
  }
  return out;
}

}  // namespace nv::runtime
