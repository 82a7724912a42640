// SPDX-License-Identifier: Apache-2.0
// The agent's options from the kernel command line (nanovisor.* parameters).
#pragma once

#include <string>
#include <string_view>

namespace nv::agent {

enum class Channel { kSerial, kVsock };

// Options read from /proc/cmdline. Unknown nanovisor.* keys are ignored (logged by the caller).
struct BootOptions {
  Channel channel = Channel::kSerial;   // nanovisor.channel=serial|vsock
  std::string log_level = "info";       // nanovisor.log=trace|debug|info|warn|error
  bool debug_console = false;           // nanovisor.debug_console (debug logs on the console)
  unsigned vsock_port = 1024;           // nanovisor.vsock_port=N
  // Fault injection for tests (docs/security.md "Faults"): nanovisor.test_crash=exec makes the
  // agent crash (an invalid instruction, as a bug would) on its first ExecProcess request.
  // Only the host sets the kernel command line; a guest that crashes its own agent gains
  // nothing it did not have.
  bool test_crash_on_exec = false;
};

// Parses a kernel command line ("console=ttyS0 nanovisor.channel=vsock ..."). Malformed
// values keep the default.
[[nodiscard]] BootOptions parseBootOptions(std::string_view cmdline);

}  // namespace nv::agent
