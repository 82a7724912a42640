// SPDX-License-Identifier: Apache-2.0
// Commands that reach a running sandbox through its api.sock: exec, kill, rm.
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "runtime/agent_client.h"
#include "runtime/libvirt_driver.h"
#include "runtime/oci_spec.h"
#include "runtime/state.h"
#include "runtime/stdio.h"

namespace nv::cli {
namespace {

namespace agentpb = nanovisor::agent::v1;
using std::chrono::milliseconds;

struct Attached {
  runtime::StateStore store;
  runtime::SandboxState state;
  std::unique_ptr<runtime::AgentClient> agent;
};

// Resolves `id` and connects to its sandbox's api.sock; errors say when it is not running.
Result<Attached> attach(const GlobalOptions& global, const std::string& id) {
  NV_ASSIGN_OR_RETURN(auto config, loadConfig(global));
  runtime::StateStore store(config.state_dir);
  NV_ASSIGN_OR_RETURN(auto full_id, store.resolve(id));
  NV_ASSIGN_OR_RETURN(auto state, store.load(full_id));
  if (state.liveStatus() != "running") {
    return fail(Errc::kInvalidArgument,
                "sandbox " + full_id + " is not running (" + state.liveStatus() + ")");
  }
  NV_ASSIGN_OR_RETURN(auto fd, runtime::connectUnixSocket(store.dir(full_id) / "api.sock"));
  auto agent = std::make_unique<runtime::AgentClient>(runtime::makeUnixTransport(std::move(fd)));
  return Attached{std::move(store), std::move(state), std::move(agent)};
}

}  // namespace

Result<int> execCommand(const GlobalOptions& global, const ExecOptions& options) {
  NV_ASSIGN_OR_RETURN(auto a, attach(global, options.id));
  std::ifstream spec_file(a.store.dir(a.state.id) / "config.json");
  auto spec = nlohmann::json::parse(spec_file, nullptr, false);
  if (spec.is_discarded() || !spec.contains("process")) {
    return fail(Errc::kInvalidArgument, "sandbox " + a.state.id + " has no readable config.json");
  }
  nlohmann::json process = spec["process"];
  process["args"] = options.command;
  process["terminal"] = options.tty;
  for (const auto& kv : options.env) {
    if (kv.find('=') == std::string::npos || kv.front() == '=') {
      return fail(Errc::kInvalidArgument, "environment entry '" + kv + "' is not KEY=VALUE");
    }
  }
  process["env"] = runtime::mergeEnv(process.value("env", std::vector<std::string>{}), options.env);
  if (!options.workdir.empty()) process["cwd"] = options.workdir;
  if (!options.user.empty()) {
    NV_ASSIGN_OR_RETURN(auto user_spec, runtime::buildOciSpec({}, {.args = {"x"}, .user = options.user}));
    process["user"] = user_spec["process"]["user"];
  }
  const std::string exec_id = "exec-" + runtime::newSandboxId();
  agentpb::ExecProcessRequest request;
  request.set_container_id(a.state.id);
  request.set_exec_id(exec_id);
  request.set_oci_process_json(process.dump());
  request.set_tty(options.tty);
  NV_TRY(a.agent->call<agentpb::ExecProcessResponse>("ExecProcess", request));

  runtime::ProcessStdio stdio(*a.agent, a.state.id, exec_id);
  stdio.start(options.interactive ? 0 : -1, 1, options.tty ? -1 : 2);
  agentpb::WaitProcessRequest wait;
  wait.set_container_id(a.state.id);
  wait.set_exec_id(exec_id);
  auto done = a.agent->call<agentpb::WaitProcessResponse>("WaitProcess", wait,
                                                          std::chrono::hours(24 * 365));
  stdio.drain();
  if (!done) return tl::unexpected(done.error());
  return done->exit_status();
}

Result<int> killCommand(const GlobalOptions& global, const std::string& id,
                        const std::string& signal) {
  NV_ASSIGN_OR_RETURN(int sig, parseSignal(signal));
  NV_ASSIGN_OR_RETURN(auto a, attach(global, id));
  agentpb::SignalProcessRequest request;
  request.set_container_id(a.state.id);
  request.set_signal(static_cast<uint32_t>(sig));
  auto sent = a.agent->call<agentpb::SignalProcessResponse>("SignalProcess", request);
  if (sent) return 0;
  // A fatal signal can stop the sandbox before the agent's reply crosses its proxy; the
  // owner then closes the connection. That is delivery, not failure: wait for the owner.
  for (int i = 0; i < 50; ++i) {
    auto now = a.store.load(a.state.id);
    if (!now || now->liveStatus() != "running") return 0;
    std::this_thread::sleep_for(milliseconds(100));
  }
  return tl::unexpected(sent.error());
}

Result<int> rmCommand(const GlobalOptions& global, const std::vector<std::string>& ids,
                      bool force) {
  NV_ASSIGN_OR_RETURN(auto config, loadConfig(global));
  runtime::StateStore store(config.state_dir);
  int status = 0;
  for (const auto& id : ids) {
    auto removed = [&]() -> Result<void> {
      NV_ASSIGN_OR_RETURN(auto full_id, store.resolve(id));
      NV_ASSIGN_OR_RETURN(auto state, store.load(full_id));
      // libvirt's QEMU is libvirtd's child, not the owner's: when the VM may still run (also
      // after its owner died), rm needs libvirt to end it. Without libvirt nothing is touched,
      // so an rm once libvirtd is back removes everything.
      const std::string live = state.liveStatus();
      const bool libvirt_vm =
          state.driver == "libvirt" && (live == "running" || live == "creating" || live == "dead");
      const bool running = live == "running" || live == "creating";
      if (running && !force) {
        return fail(Errc::kInvalidArgument,
                    "sandbox " + full_id + " is running; kill it first or use rm -f");
      }
      if (libvirt_vm) {
        if (auto up = runtime::libvirtReachable(config.libvirt_uri); !up) {
          return tl::unexpected(up.error().wrap("sandbox " + full_id +
                                                " not removed (run rm again once libvirt is back)"));
        }
      }
      if (running) {
        // The owner tears the VM down when its workload dies; if it does not, end the owner
        // (its VMM dies with it).
        if (auto a = attach(global, full_id)) {
          agentpb::SignalProcessRequest kill;
          kill.set_container_id(full_id);
          kill.set_signal(SIGKILL);
          kill.set_all(true);
          (void)a->agent->call<agentpb::SignalProcessResponse>("SignalProcess", kill,
                                                               milliseconds(5000));
        }
        for (int i = 0; i < 100 && ::kill(state.owner_pid, 0) == 0; ++i) {
          std::this_thread::sleep_for(milliseconds(50));
        }
        if (state.owner_pid > 0 && ::kill(state.owner_pid, 0) == 0) ::kill(state.owner_pid, SIGKILL);
        for (int i = 0; i < 100 && ::kill(state.owner_pid, 0) == 0; ++i) {
          std::this_thread::sleep_for(milliseconds(20));
        }
      }
      if (libvirt_vm) NV_TRY(runtime::destroyLibvirtDomain(config.libvirt_uri, full_id));
      NV_TRY(store.remove(full_id));
      std::printf("%s\n", full_id.c_str());
      return {};
    }();
    if (!removed) {
      std::fprintf(stderr, "nanovisor: %s\n", removed.error().message().c_str());
      status = 1;
    }
  }
  return status;
}

}  // namespace nv::cli
