// SPDX-License-Identifier: Apache-2.0
// The environment of the CLI end-to-end suites: the build's `nanovisor`, a temp root (state/,
// images/) with the project's busybox image imported and removed at exit — or the reason the
// suite cannot run on this host.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/subprocess.h"

namespace nv::test {

inline std::string readFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Whether the file at `path` holds `needle`: read in chunks, only its data (a sparse 64 GiB
// disk slot costs nothing), a match across two chunks included.
inline bool fileContains(const std::filesystem::path& path, const std::string& needle) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0 || needle.empty()) {
    if (fd >= 0) ::close(fd);
    return false;
  }
  bool found = false;
  std::string window;
  std::vector<char> chunk(1 << 20);
  for (off_t at = ::lseek(fd, 0, SEEK_DATA); at >= 0 && !found;) {
    const off_t hole = ::lseek(fd, at, SEEK_HOLE);
    if (hole < 0) break;
    window.clear();
    while (at < hole && !found) {
      const ssize_t n = ::pread(fd, chunk.data(), chunk.size(), at);
      if (n <= 0) break;
      window.append(chunk.data(), static_cast<size_t>(n));
      found = window.find(needle) != std::string::npos;
      window.erase(0, window.size() - std::min(window.size(), needle.size() - 1));
      at += n;
    }
    at = ::lseek(fd, hole, SEEK_DATA);
  }
  ::close(fd);
  return found;
}

// Regular files below `dir` that contain `needle` (secrets must be in none of them).
inline std::vector<std::string> filesContaining(const std::filesystem::path& dir,
                                                const std::string& needle) {
  std::vector<std::string> out;
  std::error_code ec;
  // Never throws; a walk that stops early is listed too (it would hide files).
  std::filesystem::recursive_directory_iterator it(dir, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    std::error_code type_ec;
    if (it->is_regular_file(type_ec) && fileContains(it->path(), needle)) {
      out.push_back(it->path().string());
    }
  }
  if (ec) out.push_back("(walking " + dir.string() + " stopped: " + ec.message() + ")");
  return out;
}

// `cmd` through sh; stdout+stderr (exit_code -1 and the error when it could not run).
inline RunResult shell(const std::string& cmd,
                       std::chrono::milliseconds timeout = std::chrono::milliseconds(120000)) {
  auto r = runCommand({"sh", "-c", cmd}, timeout, 64 << 20);
  if (!r) return {.exit_code = -1, .output = r.error().message()};
  return *r;
}

struct NanovisorEnv {
  std::string nanovisor;
  std::string root;  // temp dir: state/, images/
  std::string skip;  // non-empty: why the suite cannot run here

  [[nodiscard]] std::string state() const { return root + "/state"; }

  // `nanovisor <args>` on the suite's state dir and image store, through sh (so tests can
  // pipe and redirect).
  [[nodiscard]] RunResult nv(const std::string& args, std::chrono::milliseconds timeout =
                                                          std::chrono::milliseconds(120000)) const {
    return shell(nanovisor + " --state-dir " + state() + " --image-root " + root + "/images " +
                     args,
                 timeout);
  }

  // What a test left behind: sandbox directories, QEMUs naming the root, mounts below it
  // ("" when nothing).
  [[nodiscard]] std::string leftovers() const {
    std::string out;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(state(), ec)) {
      if (e.is_directory()) out += "sandbox dir " + e.path().string() + "\n";
    }
    out += shell("pgrep -af '[q]emu-system.*" + root + "'").output;
    if (readFile("/proc/self/mountinfo").find(root) != std::string::npos) {
      out += "mounts below " + root + "\n";
    }
    return out;
  }
};

// `name` names the temp dir (/tmp/nv-<name>-XXXXXX); `root_reason`, when not empty, makes the
// suite skip for a non-root user with that reason. The root dir is 0755: the libvirt driver's
// QEMU runs as libvirt-qemu and must reach the image store. Call once per process.
inline NanovisorEnv makeNanovisorEnv(const std::string& name, const std::string& root_reason = "") {
  NanovisorEnv out;
  const char* build = std::getenv("NV_BUILD_DIR");
  if (build == nullptr) {
    out.skip = "run through ctest (NV_BUILD_DIR unset)";
    return out;
  }
  if (!root_reason.empty() && ::geteuid() != 0) {
    out.skip = root_reason;
    return out;
  }
  out.nanovisor = std::string(build) + "/bin/nanovisor";
  const std::string share = std::string(build) + "/share/nanovisor/";
  for (const char* f : {"vmlinux", "initramfs.cpio.gz"}) {
    if (!std::filesystem::exists(share + f)) {
      out.skip = share + f + " missing: run 'make kernel initramfs'";
      return out;
    }
  }
  const std::string tar = std::string(build) + "/images/busybox-oci.tar";
  if (!std::filesystem::exists(tar)) {
    out.skip = tar + " missing: run 'make images'";
    return out;
  }
  std::string tmpl = "/tmp/nv-" + name + "-XXXXXX";
  out.root = ::mkdtemp(tmpl.data());
  static std::string root_to_remove;
  root_to_remove = out.root;
  std::atexit([] {
    std::error_code ec;
    std::filesystem::remove_all(root_to_remove, ec);
  });
  ::chmod(out.root.c_str(), 0755);
  auto imported = runCommand({out.nanovisor, "--image-root", out.root + "/images", "image",
                              "import", tar, "--name", "busybox"},
                             std::chrono::milliseconds(120000));
  if (!imported || imported->exit_code != 0) {
    out.skip = "importing busybox failed: " +
               (imported ? imported->output : imported.error().message());
  }
  return out;
}

}  // namespace nv::test
