// SPDX-License-Identifier: Apache-2.0
// `nanovisor run`: image -> rootfs disk -> micro-VM -> container; stdio forwarded until the
// workload exits, whose status becomes ours.
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <thread>

#include "cli/commands.h"
#include "cli/size.h"
#include "common/event_fd.h"
#include "common/logging.h"
#include "common/syscall.h"
#include "images/policy.h"
#include "images/rootfs.h"
#include "images/store.h"
#include "runtime/oci_spec.h"
#include "runtime/sandbox.h"
#include "runtime/stdio.h"

namespace nv::cli {
namespace {

namespace agentpb = nanovisor::agent::v1;

// Puts the terminal in raw mode for the lifetime of the object (run -t on a terminal).
class RawTerminal {
 public:
  explicit RawTerminal(int fd) : fd_(fd) {
    if (::tcgetattr(fd_, &saved_) != 0) return;
    termios raw = saved_;
    ::cfmakeraw(&raw);
    active_ = ::tcsetattr(fd_, TCSANOW, &raw) == 0;
  }
  ~RawTerminal() {
    if (active_) ::tcsetattr(fd_, TCSANOW, &saved_);
  }
  RawTerminal(const RawTerminal&) = delete;
  RawTerminal& operator=(const RawTerminal&) = delete;

 private:
  int fd_;
  termios saved_{};
  bool active_ = false;
};

}  // namespace

Result<int> runCommand(const GlobalOptions& global, const RunOptions& options) {
  NV_ASSIGN_OR_RETURN(auto config, loadConfig(global));
  if (options.detach && options.remove) {
    // Allowed by docker; we keep it simple and honest instead of half-supporting it.
    return fail(Errc::kInvalidArgument, "--rm with --detach is not supported yet; use rm later");
  }
  if (options.detach) {
    return fail(Errc::kUnsupported, "--detach is not supported yet; run attached");
  }

  NV_ASSIGN_OR_RETURN(auto store, images::Store::open(config.image_root.string()));
  auto image = store.get(options.image);
  if (!image) {
    return fail(Errc::kNotFound, "image '" + options.image + "' not found in " +
                                     config.image_root.string() +
                                     " (nanovisor image import FILE, or make images)");
  }
  images::Policy policy;  // no policy file: any name, unsigned images allowed
  if (std::filesystem::exists(config.policy)) {
    NV_ASSIGN_OR_RETURN(policy, images::loadPolicy(config.policy.string()));
  }
  NV_TRY(images::checkPolicy(store, *image, policy));
  NV_ASSIGN_OR_RETURN(std::string rootfs, images::rootfsImage(store, *image));

  uint64_t memory_limit = 0;
  if (!options.memory.empty()) {
    NV_ASSIGN_OR_RETURN(memory_limit, parseSize(options.memory));
    if (memory_limit < (16ull << 20)) {
      return fail(Errc::kInvalidArgument, "--memory must be at least 16m");
    }
  }
  runtime::SandboxConfig sandbox;
  sandbox.id = options.name.empty() ? runtime::newSandboxId() : options.name;
  sandbox.image = image->name;
  sandbox.rootfs_image = rootfs;
  sandbox.hostname = options.hostname.empty() ? sandbox.id.substr(0, 12) : options.hostname;
  sandbox.cpus = options.cpus > 0 ? static_cast<uint32_t>(std::ceil(options.cpus)) : config.cpus;
  // The VM gets the container's limit plus room for the guest kernel and agent.
  sandbox.memory_mib = memory_limit > 0 ? std::max<uint64_t>(config.memory_mib,
                                                             (memory_limit >> 20) + 96)
                                        : config.memory_mib;
  sandbox.exec_allowed = !options.no_exec;
  sandbox.auto_remove = options.remove;

  runtime::ImageProcessDefaults defaults{.env = image->config.env,
                                         .entrypoint = image->config.entrypoint,
                                         .cmd = image->config.cmd,
                                         .working_dir = image->config.working_dir,
                                         .user = image->config.user};
  NV_ASSIGN_OR_RETURN(sandbox.oci_spec,
                      runtime::buildOciSpec(defaults, {.args = options.command,
                                                       .env = options.env,
                                                       .cwd = options.workdir,
                                                       .user = options.user,
                                                       .hostname = sandbox.hostname,
                                                       .terminal = options.tty,
                                                       .memory_limit_bytes = memory_limit,
                                                       .cpus = options.cpus}));
  sandbox.command = sandbox.oci_spec["process"]["args"].get<std::vector<std::string>>();

  // Signals go to the workload while it runs (docker's --sig-proxy); block them before any
  // thread starts so that only the forwarding thread sees them.
  sigset_t forwarded;
  sigemptyset(&forwarded);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH}) {
    sigaddset(&forwarded, sig);
  }
  pthread_sigmask(SIG_BLOCK, &forwarded, nullptr);

  NV_ASSIGN_OR_RETURN(auto sb, runtime::Sandbox::start(config, runtime::StateStore(config.state_dir),
                                                       std::move(sandbox)));
  std::optional<RawTerminal> raw;
  if (options.tty && ::isatty(0)) raw.emplace(0);

  runtime::ProcessStdio stdio(sb->agent(), sb->id(), "");
  if (options.tty) {
    winsize ws{};
    if (::ioctl(1, TIOCGWINSZ, &ws) == 0) (void)stdio.resize(ws.ws_row, ws.ws_col);
  }
  NV_ASSIGN_OR_RETURN(auto stop, EventFd::create(EFD_NONBLOCK));
  std::thread signals([&] {
    for (;;) {
      int sig = 0;
      if (sigwait(&forwarded, &sig) != 0) continue;
      if (sig == SIGUSR2 && stop.read()) return;  // our own wake-up, see below
      if (sig == SIGWINCH) {
        winsize ws{};
        if (options.tty && ::ioctl(1, TIOCGWINSZ, &ws) == 0) (void)stdio.resize(ws.ws_row, ws.ws_col);
        continue;
      }
      (void)stdio.signal(sig);
    }
  });
  stdio.start(options.interactive ? 0 : -1, 1, options.tty ? -1 : 2);
  auto status = sb->waitInit();
  stdio.drain();
  (void)stop.write();
  ::pthread_kill(signals.native_handle(), SIGUSR2);
  signals.join();
  raw.reset();
  if (!status) {
    sb->finish(-1, status.error().message());
    return tl::unexpected(status.error());
  }
  sb->finish(*status);
  return *status;
}

}  // namespace nv::cli
