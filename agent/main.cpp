// SPDX-License-Identifier: Apache-2.0
// nanovisor-agent entry point: PID 1 in the guest, or `--listen unix:PATH` on a host.
#include <sys/prctl.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "agent/agent_service.h"
#include "agent/boot.h"
#include "agent/child.h"
#include "agent/reaper.h"
#include "agent/rpc_server.h"
#include "common/logging.h"

namespace {

constexpr const char* kUsage =
    "usage: nanovisor-agent [--listen unix:PATH] [--state-dir DIR] [--cgroup-root DIR]\n"
    "                       [--log-level LEVEL] [--version]\n"
    "Without --listen and as PID 1 it boots the guest and serves the host channel.\n";

struct Args {
  std::string listen;
  std::string state_dir;
  std::string cgroup_root = "/sys/fs/cgroup";
  std::string log_level;
};

int runHost(const Args& args) {
  if (auto ok = nv::log::init("nanovisor-agent", args.log_level, spdlog::level::info); !ok) {
    std::fprintf(stderr, "nanovisor-agent: %s\n", ok.error().message().c_str());
    return 2;
  }
  if (!args.listen.starts_with("unix:")) {
    std::fprintf(stderr, "nanovisor-agent: --listen takes unix:PATH\n");
    return 2;
  }
  ::signal(SIGPIPE, SIG_IGN);
  nv::agent::Reaper::blockSignals();
  // Orphans of exec helpers must come back to us, not to the host's init.
  ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  nv::agent::Reaper reaper;
  reaper.start();
  nv::agent::AgentConfig config;
  config.host_mode = true;
  config.cgroup_root = args.cgroup_root;
  config.state_dir = args.state_dir.empty()
                         ? "/run/nanovisor-agent-" + std::to_string(::getpid())
                         : args.state_dir;
  nv::agent::AgentService service(config, reaper);
  auto listener = nv::agent::listenUnix(args.listen.substr(5));
  if (!listener) {
    std::fprintf(stderr, "nanovisor-agent: %s\n", listener.error().message().c_str());
    return 1;
  }
  nv::log::get("agent")->info("serving on {}", args.listen);
  auto served = nv::agent::serveListener(service, std::move(*listener));
  service.removeAll();
  if (!served) {
    std::fprintf(stderr, "nanovisor-agent: %s\n", served.error().message().c_str());
    return 1;
  }
  return 0;
}

[[noreturn]] void runPid1() {
  if (auto switched = nv::agent::switchToTmpfsRoot(); !switched) {
    nv::agent::fatalReboot(switched.error().message());
  }
  if (auto mounted = nv::agent::mountEarlyFilesystems(); !mounted) {
    nv::agent::fatalReboot(mounted.error().message());
  }
  nv::agent::BootOptions options = nv::agent::readBootOptions();
  if (options.debug_console && options.log_level == "info") {
    options.log_level = "debug";  // the console is where PID 1's stderr goes
  }
  if (auto ok = nv::log::init("nanovisor-agent", options.log_level, spdlog::level::info); !ok) {
    (void)nv::log::init("nanovisor-agent", "info");
  }
  ::signal(SIGPIPE, SIG_IGN);
  nv::agent::Reaper::blockSignals();
  nv::agent::Reaper reaper;
  reaper.start();
  nv::agent::AgentConfig config;
  config.test_crash_on_exec = options.test_crash_on_exec;
  nv::agent::AgentService service(config, reaper);
  nv::agent::logToKmsg(std::string("ready, version ") + nv::agent::agentVersion());
  nv::Result<void> served;
  if (options.channel == nv::agent::Channel::kVsock) {
    auto listener = nv::agent::listenVsock(options.vsock_port);
    if (!listener) {
      nv::agent::fatalReboot(listener.error().message());
    }
    served = nv::agent::serveListener(service, std::move(*listener));
  } else {
    auto port = nv::agent::findSerialPort(nv::agent::kAgentPortName, 10000);
    if (!port) {
      nv::agent::fatalReboot(port.error().message());
    }
    served = nv::agent::serveSerialPort(service, *port);
  }
  nv::agent::fatalReboot(served ? "server stopped" : served.error().message());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "--nv-child") == 0) {
    return nv::agent::runChild();
  }
  Args args;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "nanovisor-agent: %s needs a value\n%s", argv[i], kUsage);
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--listen") {
      args.listen = value();
    } else if (arg == "--state-dir" || arg == "--root") {
      args.state_dir = value();
    } else if (arg == "--cgroup-root") {
      args.cgroup_root = value();
    } else if (arg == "--log-level") {
      args.log_level = value();
    } else if (arg == "--version") {
      std::printf("nanovisor-agent %s\n", nv::agent::agentVersion());
      return 0;
    } else if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else {
      std::fprintf(stderr, "nanovisor-agent: unknown argument %s\n%s", argv[i], kUsage);
      return 2;
    }
  }
  if (args.listen.empty()) {
    if (::getpid() != 1) {
      std::fprintf(stderr, "nanovisor-agent: not PID 1; use --listen unix:PATH\n");
      return 2;
    }
    runPid1();
  }
  return runHost(args);
}
