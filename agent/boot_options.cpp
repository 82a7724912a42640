// SPDX-License-Identifier: Apache-2.0
// Parses nanovisor.* kernel command line parameters.
#include "agent/boot_options.h"

#include <charconv>

namespace nv::agent {

BootOptions parseBootOptions(std::string_view cmdline) {
  BootOptions out;
  size_t pos = 0;
  while (pos < cmdline.size()) {
    while (pos < cmdline.size() && (cmdline[pos] == ' ' || cmdline[pos] == '\n' ||
                                    cmdline[pos] == '\t')) {
      ++pos;
    }
    size_t end = pos;
    while (end < cmdline.size() && cmdline[end] != ' ' && cmdline[end] != '\n' &&
           cmdline[end] != '\t') {
      ++end;
    }
    std::string_view word = cmdline.substr(pos, end - pos);
    pos = end;
    if (!word.starts_with("nanovisor.")) {
      continue;
    }
    word.remove_prefix(10);
    auto eq = word.find('=');
    std::string_view key = word.substr(0, eq);
    std::string_view value = eq == std::string_view::npos ? "" : word.substr(eq + 1);
    if (key == "channel") {
      if (value == "vsock") {
        out.channel = Channel::kVsock;
      } else if (value == "serial") {
        out.channel = Channel::kSerial;
      }
    } else if (key == "log" && !value.empty()) {
      out.log_level = std::string(value);
    } else if (key == "debug_console") {
      out.debug_console = value.empty() || value == "1" || value == "on" || value == "true";
    } else if (key == "test_crash") {
      out.test_crash_on_exec = value == "exec";
    } else if (key == "vsock_port") {
      unsigned port = 0;
      auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), port);
      if (ec == std::errc() && ptr == value.data() + value.size() && port > 0) {
        out.vsock_port = port;
      }
    }
  }
  return out;
}

}  // namespace nv::agent
