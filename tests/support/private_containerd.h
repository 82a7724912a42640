// SPDX-License-Identifier: Apache-2.0
// A containerd of the test's own: root, state, socket and config in a temp dir, our bin/ first on
// its PATH (so it finds containerd-shim-nanovisor-v2), nanovisor's state and image dirs under the
// temp dir too. Used by the shim (ctr) and pod (CRI) end-to-end tests.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/subprocess.h"

namespace nv::test {

// Reads a whole file ("" when it cannot be read).
std::string readFile(const std::string& path);
// Pids of processes whose command line contains `needle`.
std::vector<pid_t> processesMatching(const std::string& needle);

// Why the shim's ctr suites cannot run here, "" when they can: root, containerd and ctr, the
// shim in <build>/bin, the guest kernel and initramfs, the busybox image, a way to run a VM.
[[nodiscard]] std::string shimSuiteMissing(const std::string& build);

class PrivateContainerd {
 public:
  struct Options {
    std::string bin_dir;       // our build's bin/ (prepended to containerd's PATH)
    std::string extra_config;  // TOML appended to the generated config (plugins, CRI, ...)
    bool cri = false;          // false: the CRI plugin is disabled
  };

  // Starts containerd and waits until it answers `ctr version`.
  [[nodiscard]] static Result<std::unique_ptr<PrivateContainerd>> start(const Options& options);
  // Stops containerd (SIGTERM, then SIGKILL) and removes the temp dir.
  ~PrivateContainerd();
  PrivateContainerd(const PrivateContainerd&) = delete;
  PrivateContainerd& operator=(const PrivateContainerd&) = delete;

  // `ctr --address <socket> [-n namespace] args...`, stdout+stderr.
  [[nodiscard]] RunResult ctr(const std::vector<std::string>& args, int timeout_ms = 60000,
                              const std::string& ns = "") const;
  // `ctr images import` of <build>/images/busybox-oci.tar; returns the image's name.
  [[nodiscard]] Result<std::string> importBusybox(const std::string& build) const;
  // SIGTERM and wait; false when it did not stop within 20 s.
  bool stop();
  // stop(), then start containerd again with the same root, state, socket and config (the
  // shims it started keep running and are reloaded from its state dir); waits until it
  // answers `ctr version`.
  [[nodiscard]] Result<void> restart();

  [[nodiscard]] const std::string& root() const { return root_; }
  [[nodiscard]] const std::string& socket() const { return socket_; }
  [[nodiscard]] std::string log() const { return readFile(root_ + "/containerd.log"); }
  // Shim processes serving this containerd (their -address is our socket).
  [[nodiscard]] std::vector<pid_t> shims() const { return processesMatching("-address " + socket_); }

 private:
  PrivateContainerd() = default;
  // Spawns containerd with the config under root_ and waits until it answers.
  [[nodiscard]] Result<void> launch();
  std::string bin_dir_;
  std::string root_;
  std::string socket_;
  std::optional<Subprocess> process_;
};

}  // namespace nv::test
