// SPDX-License-Identifier: Apache-2.0
// nanovisor: run containers in micro-VMs (docker-like verbs), manage images, check the host.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "cli/commands.h"
#include "cli/image_commands.h"
#include "common/logging.h"

namespace {

constexpr const char* kVersion = "nanovisor " NV_VERSION;

}  // namespace

int main(int argc, char** argv) {
  using nv::cli::GlobalOptions;
  CLI::App app{"nanovisor: run containers in micro-VMs, each with its own guest kernel.\n"
               "Images come from the local store (nanovisor image import); state lives in\n"
               "/run/nanovisor (sandboxes) and /var/lib/nanovisor (images)."};
  app.set_version_flag("--version", kVersion);
  app.require_subcommand(1);
  GlobalOptions global;
  app.add_option("--config", global.config_path, "runtime config file (TOML)")
      ->default_str(nv::runtime::kDefaultConfigPath)
      ->each([&](const std::string&) { global.config_explicit = true; });
  app.add_option("--log-level", global.log_level,
                 "trace|debug|info|warn|error|off (default: $NANOVISOR_LOG or warn)");
  app.add_option("--state-dir", global.state_dir, "sandbox state root (default /run/nanovisor)");
  app.add_option("--image-root", global.image_root,
                 "image store root (default /var/lib/nanovisor)");
  app.add_option("--hypervisor", global.hypervisor, "auto|builtin|qemu|libvirt");

  nv::cli::RunOptions run;
  auto* run_cmd = app.add_subcommand("run", "Run a command in a new micro-VM sandbox");
  run_cmd->add_flag("--rm", run.remove, "remove the sandbox (and its log) when it exits");
  run_cmd->add_flag("-d,--detach", run.detach,
                    "run in the background (output to `nanovisor logs`), print the id");
  run_cmd->add_flag("-i,--interactive", run.interactive, "keep stdin open and forward it");
  run_cmd->add_flag("-t,--tty", run.tty, "allocate a terminal");
  run_cmd->add_option("-e,--env", run.env, "set an environment variable (KEY=VALUE)")
      ->allow_extra_args(false);
  run_cmd->add_option("-v,--volume", run.volumes,
                      "HOSTDIR:CTRDIR[:ro|:rw]: HOSTDIR live at CTRDIR (virtio-9p); the "
                      "container's writes land in HOSTDIR unless :ro (qemu, libvirt drivers)")
      ->allow_extra_args(false);
  run_cmd->add_option("--secret", run.secrets,
                      "id=NAME,src=FILE: FILE's bytes at /run/secrets/NAME (guest tmpfs, 0400, "
                      "owned by the container user; never written to the host state dir)")
      ->allow_extra_args(false);
  run_cmd->add_option("--name", run.name, "sandbox name (default: a random id)");
  run_cmd->add_option("--cpus", run.cpus, "vCPUs of the VM (rounded up) and CPU quota")
      ->check(CLI::Range(0.01, 32.0));
  run_cmd->add_option("-m,--memory", run.memory, "memory limit, e.g. 64m or 1g");
  run_cmd->add_option("-w,--workdir", run.workdir, "working directory inside the container");
  run_cmd->add_option("-u,--user", run.user, "user[:group] or uid[:gid]");
  run_cmd->add_option("--hostname", run.hostname, "container hostname");
  run_cmd->add_flag("--no-exec", run.no_exec, "refuse later exec requests in this sandbox");
  run_cmd->add_option("--disk-bps", run.disk_bps,
                      "rate limit of each disk in bytes/s, e.g. 50m or 50m:200m (RATE:BURST)");
  run_cmd->add_option("--disk-iops", run.disk_iops,
                      "rate limit of each disk in requests/s, e.g. 1000 or 1000:4000");
  run_cmd->add_option("--log-max-size", run.log_max_size,
                      "-d: output.log is rotated once it would pass this size, keeping one "
                      "older file (at most twice this on disk); at least 4k")
      ->capture_default_str();
  run_cmd->add_option("image", run.image, "image name (see nanovisor image ls); then the command")->required();
  // Everything after IMAGE is the command, options included (`sh -c ...`).
  run_cmd->prefix_command();

  nv::cli::ExecOptions exec;
  auto* exec_cmd = app.add_subcommand("exec", "Run a command in a running sandbox");
  exec_cmd->add_flag("-i,--interactive", exec.interactive, "forward stdin");
  exec_cmd->add_flag("-t,--tty", exec.tty, "allocate a terminal");
  exec_cmd->add_option("-e,--env", exec.env, "set an environment variable (KEY=VALUE)")
      ->allow_extra_args(false);
  exec_cmd->add_option("-w,--workdir", exec.workdir, "working directory");
  exec_cmd->add_option("-u,--user", exec.user, "user[:group] or uid[:gid]");
  exec_cmd->add_option("id", exec.id, "sandbox id or name")->required();
  exec_cmd->prefix_command();

  bool ps_all = false;
  auto* ps_cmd = app.add_subcommand("ps", "List sandboxes");
  ps_cmd->add_flag("-a,--all", ps_all, "include exited sandboxes");

  std::string id;
  bool logs_follow = false;
  auto* logs_cmd = app.add_subcommand("logs", "Print a detached sandbox's stdout and stderr");
  logs_cmd->add_flag("-f,--follow", logs_follow, "keep printing until the workload exits");
  logs_cmd->add_option("id", id, "sandbox id or name")->required();

  std::string signal = "KILL";
  auto* kill_cmd = app.add_subcommand("kill", "Send a signal to a sandbox's process");
  kill_cmd->add_option("-s,--signal", signal, "signal name or number")->default_str("KILL");
  kill_cmd->add_option("id", id, "sandbox id or name")->required();

  std::vector<std::string> ids;
  bool force = false;
  auto* rm_cmd = app.add_subcommand("rm", "Remove sandboxes");
  rm_cmd->add_flag("-f,--force", force, "kill running sandboxes first");
  rm_cmd->add_option("ids", ids, "sandbox ids or names")->required();

  auto* inspect_cmd = app.add_subcommand("inspect", "Print a sandbox's state as JSON");
  inspect_cmd->add_option("id", id, "sandbox id or name")->required();

  auto* check_cmd = app.add_subcommand("check", "Check what this host can run, with fixes");

  // `image ...` runs its subcommand inside the parse (see cli/image_commands.h).
  nv::cli::addImageCommands(app, [&global]() -> std::string {
    auto config = nv::cli::loadConfig(global);
    return config ? config->image_root.string() : std::string("/var/lib/nanovisor");
  });


  // With prefix_command() CLI11 hands unknown flags before IMAGE to the command; refuse them
  // the way docker does ("run --frobnicate busybox" is a typo, not a command).
  for (int i = 1; i < argc; ++i) {
    std::string word = argv[i];
    CLI::App* sub = word == "run" ? run_cmd : word == "exec" ? exec_cmd : nullptr;
    if (sub == nullptr) continue;
    for (int j = i + 1; j < argc && argv[j][0] == '-'; ++j) {
      std::string flag = argv[j];
      if (flag == "--") break;
      std::string name = flag.substr(0, flag.find('='));
      const CLI::Option* opt = sub->get_option_no_throw(name);
      if (opt == nullptr && name.size() > 2 && name[1] != '-') {
        // Combined short flags (-it): each must exist and take no value.
        bool all_known = true;
        for (size_t k = 1; k < name.size(); ++k) {
          const CLI::Option* o = sub->get_option_no_throw(std::string("-") + name[k]);
          all_known = all_known && o != nullptr && o->get_items_expected_max() == 0;
        }
        if (all_known) continue;
      }
      if (opt == nullptr) {
        std::fprintf(stderr, "nanovisor: unknown flag '%s' for %s (see nanovisor %s --help)\n",
                     name.c_str(), word.c_str(), word.c_str());
        return 2;
      }
      if (opt->get_items_expected_max() > 0 && flag.find('=') == std::string::npos) ++j;
    }
    break;
  }
  CLI11_PARSE(app, argc, argv);

  if (auto logging = nv::log::init("nanovisor", global.log_level); !logging) {
    std::fprintf(stderr, "nanovisor: %s\n", logging.error().message().c_str());
    return 2;
  }
  nv::Result<int> status = 0;
  if (run_cmd->parsed()) {
    run.command = run_cmd->remaining();
    status = nv::cli::runCommand(global, run);
  } else if (exec_cmd->parsed()) {
    exec.command = exec_cmd->remaining();
    if (exec.command.empty()) {
      std::fprintf(stderr, "nanovisor: exec needs a command after the sandbox id\n");
      return 2;
    }
    status = nv::cli::execCommand(global, exec);
  } else if (ps_cmd->parsed()) {
    status = nv::cli::psCommand(global, ps_all);
  } else if (logs_cmd->parsed()) {
    status = nv::cli::logsCommand(global, id, logs_follow);
  } else if (kill_cmd->parsed()) {
    status = nv::cli::killCommand(global, id, signal);
  } else if (rm_cmd->parsed()) {
    status = nv::cli::rmCommand(global, ids, force);
  } else if (inspect_cmd->parsed()) {
    status = nv::cli::inspectCommand(global, id);
  } else if (check_cmd->parsed()) {
    status = nv::cli::checkCommand(global);
  }
  if (!status) {
    std::fprintf(stderr, "nanovisor: %s\n", status.error().message().c_str());
    return 125;  // docker's status for "the runtime failed", distinct from the workload's
  }
  return *status;
}
