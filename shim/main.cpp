// SPDX-License-Identifier: Apache-2.0
// containerd-shim-nanovisor-v2: containerd's runtime v2 shim for nanovisor micro-VMs
// (runtime type io.containerd.nanovisor.v2). See docs/containerd.md.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "shim/daemon.h"
#include "shim/options.h"

namespace {

constexpr const char* kUsage =
    "usage: containerd-shim-nanovisor-v2 -namespace NS -id ID -address SOCK "
    "[-publish-binary P] [-bundle DIR] [-debug] [start|delete]\n"
    "containerd runs it for the runtime io.containerd.nanovisor.v2 (docs/containerd.md):\n"
    "  start   start the shim daemon for task ID, print its socket address\n"
    "  delete  clean up after a shim that is gone, print a DeleteResponse\n"
    "  (none)  the daemon: serve containerd's Task API on fd 3\n";

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args_in(argv, argv + argc);
  auto args = nv::shim::parseArgs(args_in);
  if (!args) {
    std::fprintf(stderr, "containerd-shim-nanovisor-v2: %s\n%s", args.error().message().c_str(),
                 kUsage);
    return 2;
  }
  if (args->help) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (args->version) {
    std::printf("containerd-shim-nanovisor-v2 %s\n", NV_VERSION);
    return 0;
  }
  if (args->action == "start") {
    std::error_code ec;
    auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    return nv::shim::runStart(*args, ec ? args_in[0] : self.string());
  }
  if (args->action == "delete") return nv::shim::runDelete(*args);
  return nv::shim::runDaemon(*args);
}
