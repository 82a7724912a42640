// SPDX-License-Identifier: Apache-2.0
#include "runtime/vm.h"

#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstring>

#include <fstream>
#include <iterator>
#include <sstream>
#include <string_view>

#include <fmt/format.h>

#include "common/subprocess.h"

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

std::string vmmExitDescription(std::string_view program, int wait_status) {
  if (!WIFSIGNALED(wait_status)) {
    return fmt::format("{} exited with status {}", program, waitStatusToExitCode(wait_status));
  }
  const int sig = WTERMSIG(wait_status);
  const char* abbrev = ::sigabbrev_np(sig);
  std::string text = fmt::format("{} killed by signal {}", program, sig);
  if (abbrev != nullptr) {
    text += fmt::format(" (SIG{})", abbrev);
  }
  if (sig == SIGSYS) {
    text += ": seccomp violation";
  }
  return text;
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

std::string guestCrash(const std::filesystem::path& console_log) {
  constexpr std::streamoff kTailBytes = 64 << 10;
  constexpr size_t kMaxReason = 160;
  std::ifstream in(console_log, std::ios::binary);
  if (!in) return "";
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  in.seekg(size > kTailBytes ? size - kTailBytes : 0);
  const std::string tail(std::istreambuf_iterator<char>(in), {});
  static constexpr std::string_view kPanic = "Kernel panic - not syncing: ";
  const auto at = tail.rfind(kPanic);
  if (at == std::string::npos) return "";
  std::string reason;
  for (size_t i = at + kPanic.size(); i < tail.size() && tail[i] != '\n' && tail[i] != '\r'; ++i) {
    const char c = tail[i];
    reason += c >= 0x20 && c < 0x7f ? c : '?';
    if (reason.size() == kMaxReason) break;
  }
  while (!reason.empty() && reason.back() == ' ') reason.pop_back();
  if (reason.rfind("Attempted to kill init!", 0) == 0) {
    return "the guest agent (PID 1) died: " + reason;
  }
  return "the guest kernel panicked: " + reason;
}

}  // namespace nv::runtime
