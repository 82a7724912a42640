// SPDX-License-Identifier: Apache-2.0
// The shim's command line as containerd 1.6 passes it (Go `flag` style: `-namespace ns -id x
// start`), and the socket address `start` derives from it (docs/containerd.md).
#pragma once

#include <string>
#include <vector>

#include "common/result.h"

namespace nv::shim {

struct ShimArgs {
  std::string namespace_name;   // -namespace
  std::string id;               // -id
  std::string address;          // -address: containerd's gRPC socket
  std::string publish_binary;   // -publish-binary
  std::string bundle;           // -bundle (delete only; start runs in the bundle dir)
  bool debug = false;           // -debug
  std::string action;           // "start", "delete", or empty: serve (the daemon)
  bool version = false;         // -v / --version
  bool help = false;            // -h / --help
};

// Parses `-flag value`, `--flag value`, `-flag=value`; the action word comes last. Unknown
// flags are errors naming the flag.
[[nodiscard]] Result<ShimArgs> parseArgs(const std::vector<std::string>& argv);

// The name of a task's sandbox directory under the shim's state dir: the task id, or for ids
// longer than 24 characters (CRI's are 64 hex digits) a 24-digit sha256 prefix of it, so that
// the VM's sockets below it fit a Unix socket path (108 bytes).
[[nodiscard]] std::string sandboxIdFor(const std::string& task_id);

// The socket path containerd's own shims use: /run/containerd/s/<sha256(address/ns/id)>.
[[nodiscard]] std::string socketPath(const std::string& containerd_address,
                                     const std::string& namespace_name, const std::string& id,
                                     const std::string& socket_dir = "/run/containerd/s");

// "unix://<path>" (what `start` prints and writes into the bundle's `address` file).
[[nodiscard]] inline std::string socketAddress(const std::string& path) {
  return "unix://" + path;
}

}  // namespace nv::shim
