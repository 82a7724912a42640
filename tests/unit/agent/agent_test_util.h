// SPDX-License-Identifier: Apache-2.0
// Shared by the agent tests: a tiny busybox rootfs and a runc-style base OCI spec.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace nv::agent::testing {

inline constexpr const char* kBusybox = "/bin/busybox";

// The spec `runc spec` would write, with `args` as the process.
inline nlohmann::json baseSpec(const std::vector<std::string>& args) {
  return {
      {"ociVersion", "1.0.2"},
      {"process",
       {{"args", args},
        {"env", {"PATH=/bin:/usr/bin", "TERM=xterm"}},
        {"cwd", "/"},
        {"user", {{"uid", 0}, {"gid", 0}}},
        {"noNewPrivileges", true}}},
      {"root", {{"path", "rootfs"}, {"readonly", false}}},
      {"hostname", "testbox"},
      {"mounts",
       {{{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}},
        {{"destination", "/dev"}, {"type", "tmpfs"}, {"source", "tmpfs"},
         {"options", {"nosuid", "strictatime", "mode=755", "size=65536k"}}},
        {{"destination", "/dev/pts"}, {"type", "devpts"}, {"source", "devpts"},
         {"options", {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}}},
        {{"destination", "/tmp"}, {"type", "tmpfs"}, {"source", "tmpfs"}}}},
      {"linux",
       {{"namespaces",
         {{{"type", "pid"}}, {{"type", "ipc"}}, {{"type", "uts"}}, {{"type", "mount"}}}},
        {"maskedPaths", {"/proc/kcore", "/proc/keys"}},
        {"readonlyPaths", {"/proc/sys"}}}},
  };
}

// A rootfs directory with busybox (static) and its applets, /etc/passwd and /etc/group
// (users root and alice, group staff with alice).
inline void buildRootfs(const std::string& root) {
  for (const char* d : {"/bin", "/etc", "/proc", "/dev", "/tmp", "/sys", "/home/alice"}) {
    std::filesystem::create_directories(root + d);
  }
  std::filesystem::copy_file(kBusybox, root + "/bin/busybox");
  for (const char* applet : {"sh", "echo", "cat", "sleep", "id", "pwd", "env", "true",
                             "head", "dd", "md5sum", "ps", "hostname", "ls", "wc", "tr", "touch", "uname", "stty", "cut", "tty", "chown", "grep", "mkdir", "readlink"}) {
    std::filesystem::create_symlink("busybox", root + "/bin/" + applet);
  }
  std::ofstream(root + "/etc/passwd")
      << "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000:Alice:/home/alice:/bin/sh\n";
  std::ofstream(root + "/etc/group") << "root:x:0:\nalice:x:1000:\nstaff:x:50:alice\n";
}


}  // namespace nv::agent::testing
