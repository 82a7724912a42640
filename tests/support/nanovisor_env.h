// SPDX-License-Identifier: Apache-2.0
// The environment of the CLI end-to-end suites: the build's `nanovisor`, a temp root (state/,
// images/) with the project's busybox image imported and removed at exit — or the reason the
// suite cannot run on this host.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "common/subprocess.h"

namespace nv::test {

struct NanovisorEnv {
  std::string nanovisor;
  std::string root;  // temp dir: state/, images/
  std::string skip;  // non-empty: why the suite cannot run here
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
