// SPDX-License-Identifier: Apache-2.0
// `nanovisor run`: image -> rootfs disk -> micro-VM -> container; stdio forwarded until the
// workload exits, whose status becomes ours.
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <optional>
#include <thread>

#include "cli/commands.h"
#include "common/event_fd.h"
#include "common/logging.h"
#include "common/rate_limit.h"
#include "common/size.h"
#include "common/syscall.h"
#include "common/unique_fd.h"
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

// Writes the supervisor's one-line start report to the waiting CLI: "ok" or the error. "ok"
// closes the pipe (the CLI returns, the supervisor serves on); after an error the pipe stays
// open until the supervisor's _exit closes it, so the CLI returns only when nothing of the
// failed sandbox, the supervisor included, is left.
void reportStart(UniqueFd& ready, const std::string& line) {
  if (!ready) return;
  const std::string text = line + "\n";
  (void)retryOnEintr([&] { return ::write(ready.get(), text.data(), text.size()); });
  if (line == "ok") {
    ready.reset();
  } else {
    (void)ready.release();
  }
}

// Owns a sandbox from start to finish. Attached (`ready` invalid): the workload's stdio is
// ours and its exit status becomes ours. Detached (`ready` is the pipe to the waiting CLI):
// stdout and stderr are appended to <state>/<id>/output.log and the start is reported on
// `ready` as soon as the workload runs. Either way the sandbox keeps serving api.sock until
// the workload exits, then the exit status is recorded (or the sandbox removed with --rm).
Result<int> serve(const runtime::RuntimeConfig& config, runtime::SandboxConfig sandbox, bool tty,
                  bool interactive, UniqueFd ready, uint64_t log_max_bytes) {
  const bool detached = ready.valid();
  // Signals go to the workload while it runs (docker's --sig-proxy); block them before any
  // thread starts so that only the forwarding thread sees them.
  sigset_t forwarded;
  sigemptyset(&forwarded);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH}) {
    sigaddset(&forwarded, sig);
  }
  pthread_sigmask(SIG_BLOCK, &forwarded, nullptr);

  const std::string id = sandbox.id;
  log::get("cli")->debug("{}: starting the sandbox", id);
  auto started = runtime::Sandbox::start(config, runtime::StateStore(config.state_dir),
                                         std::move(sandbox));
  if (!started) {
    reportStart(ready, started.error().message());
    return tl::unexpected(started.error());
  }
  auto& sb = *started;
  int in_fd = interactive && !detached ? 0 : -1;
  std::unique_ptr<runtime::RotatingLog> log;
  if (detached) {
    auto opened = runtime::RotatingLog::open(
        runtime::StateStore(config.state_dir).dir(id) / "output.log", log_max_bytes);
    if (!opened) {
      sb->finish(-1, opened.error().message());
      reportStart(ready, opened.error().message());
      return tl::unexpected(opened.error());
    }
    log = std::move(*opened);
  }

  std::optional<RawTerminal> raw;
  if (tty && !detached && ::isatty(0)) raw.emplace(0);

  runtime::ProcessStdio stdio(sb->agent(), sb->id(), "");
  if (tty && !detached) {
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
        if (tty && !detached && ::ioctl(1, TIOCGWINSZ, &ws) == 0) {
          (void)stdio.resize(ws.ws_row, ws.ws_col);
        }
        continue;
      }
      // A detached sandbox outlives its terminal: a hangup is not for the workload.
      if (sig == SIGHUP && detached) continue;
      (void)stdio.signal(sig);
    }
  });
  if (detached) {
    auto to_log = [&log](const std::string& data) { return log->write(data); };
    stdio.start(-1, to_log, tty ? runtime::ProcessStdio::Writer() : to_log);
  } else {
    stdio.start(in_fd, 1, tty ? -1 : 2);
  }
  reportStart(ready, "ok");
  auto status = sb->waitInit();
  log::get("cli")->debug("{}: the container exited", id);
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

// `run -d`: the sandbox is owned by a supervisor process that outlives the CLI (double fork,
// own session, stdio on /dev/null, cwd /). The CLI waits for its one-line start report and
// prints the sandbox id, or the error.
Result<int> startDetached(runtime::RuntimeConfig config, runtime::SandboxConfig sandbox,
                          bool tty, uint64_t log_max_bytes) {
  // The supervisor runs in /, so every path it uses must be absolute.
  for (auto* path : {&config.state_dir, &config.image_root, &config.kernel, &config.initramfs,
                     &config.policy, &config.vmm_binary, &sandbox.rootfs_image}) {
    std::error_code ec;
    if (!path->empty()) *path = std::filesystem::absolute(*path, ec);
    if (ec) {
      return fail(Errc::kInvalidArgument,
                  "cannot resolve " + path->string() + ": " + ec.message());
    }
  }
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return failErrno("creating the supervisor's pipe");
  UniqueFd read_end(fds[0]);
  UniqueFd write_end(fds[1]);
  std::fflush(nullptr);
  const pid_t child = ::fork();
  if (child < 0) return failErrno("forking the sandbox supervisor");
  if (child == 0) {
    read_end.reset();
    if (::setsid() < 0) ::_exit(125);
    const pid_t supervisor = ::fork();
    if (supervisor != 0) ::_exit(supervisor < 0 ? 125 : 0);  // the supervisor is reparented
    // The supervisor: no terminal, no inherited descriptors but the report pipe (fd 3).
    const int report = ::fcntl(write_end.release(), F_DUPFD_CLOEXEC, 10);
    const int null = ::open("/dev/null", O_RDWR);
    if (report < 0 || null < 0 || ::chdir("/") != 0) ::_exit(125);
    for (int fd = 0; fd <= 2; ++fd) ::dup2(null, fd);
    if (::dup3(report, 3, O_CLOEXEC) < 0) ::_exit(125);
    ::close_range(4, ~0U, 0);
    ::signal(SIGPIPE, SIG_IGN);
    auto status = serve(config, std::move(sandbox), tty, false, UniqueFd(3), log_max_bytes);
    std::fflush(nullptr);
    ::_exit(status ? *status & 0xff : 125);
  }
  write_end.reset();
  int child_status = 0;
  (void)retryOnEintr([&] { return ::waitpid(child, &child_status, 0); });
  std::string report;
  char buffer[512];
  for (;;) {
    ssize_t n = retryOnEintr([&] { return ::read(read_end.get(), buffer, sizeof buffer); });
    if (n <= 0) break;
    report.append(buffer, static_cast<size_t>(n));
  }
  while (!report.empty() && report.back() == '\n') report.pop_back();
  if (report.empty()) {
    return fail(Errc::kInternal, "the sandbox supervisor exited before the sandbox started");
  }
  if (report != "ok") return fail(Errc::kUnavailable, report);
  std::printf("%s\n", sandbox.id.c_str());
  return 0;
}

}  // namespace

Result<runtime::VolumeConfig> parseVolume(const std::string& text) {
  std::vector<std::string> parts;
  for (size_t start = 0;;) {
    size_t colon = text.find(':', start);
    parts.push_back(text.substr(start, colon - start));
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  if (parts.size() < 2 || parts.size() > 3 || parts[0].empty() || parts[1].empty()) {
    return fail(Errc::kInvalidArgument, "volume '" + text + "' is not HOSTDIR:CTRDIR[:ro|:rw]");
  }
  if (parts.size() == 3 && parts[2] != "ro" && parts[2] != "rw") {
    return fail(Errc::kInvalidArgument, "volume '" + text + "': unknown mode '" + parts[2] +
                                            "' (only ro or rw)");
  }
  std::error_code ec;
  auto host = std::filesystem::absolute(parts[0], ec);
  if (ec || !std::filesystem::is_directory(host, ec)) {
    return fail(Errc::kInvalidArgument,
                "volume '" + text + "': " + parts[0] + " is not a directory");
  }
  const std::string& ctr = parts[1];
  if (ctr.front() != '/' || ctr == "/" || ctr.find("/../") != std::string::npos ||
      ctr.ends_with("/..") || ctr.find("//") != std::string::npos) {
    return fail(Errc::kInvalidArgument,
                "volume '" + text + "': " + ctr + " must be a clean absolute path other than /");
  }
  return runtime::VolumeConfig{.host_dir = host.lexically_normal(), .destination = ctr,
                               .read_only = parts.size() == 3 && parts[2] == "ro"};
}

Result<runtime::SecretConfig> parseSecret(const std::string& text) {
  const std::string usage = "--secret '" + text + "': expected id=NAME,src=FILE";
  std::string name;
  std::string src;
  for (size_t start = 0; start <= text.size();) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    const std::string field = text.substr(start, comma - start);
    const size_t eq = field.find('=');
    if (eq == std::string::npos) return fail(Errc::kInvalidArgument, usage);
    const std::string key = field.substr(0, eq);
    const std::string value = field.substr(eq + 1);
    if (key == "id") {
      name = value;
    } else if (key == "src" || key == "source") {
      src = value;
    } else {
      return fail(Errc::kInvalidArgument,
                  "--secret '" + text + "': unknown key '" + key + "' (expected id=NAME,src=FILE)");
    }
    start = comma + 1;
  }
  if (name.empty() || src.empty()) return fail(Errc::kInvalidArgument, usage);
  bool valid = name.size() <= 255 && name != "." && name != "..";
  for (char c : name) {
    valid = valid && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-');
  }
  if (!valid) {
    return fail(Errc::kInvalidArgument,
                "--secret id '" + name + "' must be a file name of [A-Za-z0-9._-]");
  }
  UniqueFd fd(::open(src.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return failErrno("--secret " + name + ": cannot read " + src);
  runtime::SecretConfig secret{.name = name, .data = {}};
  char buffer[4096];
  for (;;) {
    const ssize_t n = retryOnEintr([&] { return ::read(fd.get(), buffer, sizeof buffer); });
    if (n < 0) return failErrno("--secret " + name + ": cannot read " + src);
    if (n == 0) break;
    secret.data.append(buffer, static_cast<size_t>(n));
    if (secret.data.size() > runtime::kMaxSecretBytes) {
      return fail(Errc::kTooLarge, "--secret " + name + ": " + src + " is over 1 MiB");
    }
  }
  std::fill(std::begin(buffer), std::end(buffer), '\0');
  return secret;
}

Result<int> runCommand(const GlobalOptions& global, const RunOptions& options) {
  NV_ASSIGN_OR_RETURN(auto config, loadConfig(global));

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
  // The cached EROFS rootfs is rebuilt when it is missing; a missing or damaged layer blob
  // cannot be: the image must be imported again.
  auto rootfs = images::rootfsImage(store, *image);
  if (!rootfs) {
    return tl::unexpected(rootfs.error().wrap(
        "the rootfs of image '" + image->name + "' cannot be built (import the image again)"));
  }

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
  sandbox.rootfs_image = *rootfs;
  sandbox.hostname = options.hostname.empty() ? sandbox.id.substr(0, 12) : options.hostname;
  sandbox.cpus = options.cpus > 0 ? static_cast<uint32_t>(std::ceil(options.cpus)) : config.cpus;
  // The VM gets the container's limit plus room for the guest kernel and agent.
  sandbox.memory_mib = memory_limit > 0 ? std::max<uint64_t>(config.memory_mib,
                                                             (memory_limit >> 20) + 96)
                                        : config.memory_mib;
  sandbox.exec_allowed = !options.no_exec;
  auto log_max_bytes = parseSize(options.log_max_size);
  if (!log_max_bytes || *log_max_bytes < 4096) {
    return fail(Errc::kInvalidArgument, "--log-max-size '" + options.log_max_size +
                                            "': expected a size of at least 4k, e.g. 32m");
  }
  NV_ASSIGN_OR_RETURN(sandbox.disk_limit, parseDiskRateLimit(options.disk_bps, "--disk-bps",
                                                             options.disk_iops, "--disk-iops"));
  sandbox.auto_remove = options.remove;
  for (const auto& text : options.volumes) {
    NV_ASSIGN_OR_RETURN(auto volume, parseVolume(text));
    sandbox.volumes.push_back(std::move(volume));
  }
  for (const auto& text : options.secrets) {
    NV_ASSIGN_OR_RETURN(auto secret, parseSecret(text));
    for (const auto& other : sandbox.secrets) {
      if (other.name == secret.name) {
        return fail(Errc::kInvalidArgument, "--secret id=" + secret.name + " is given twice");
      }
    }
    sandbox.secrets.push_back(std::move(secret));
  }

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

  if (options.detach) {
    return startDetached(std::move(config), std::move(sandbox), options.tty, *log_max_bytes);
  }
  return serve(config, std::move(sandbox), options.tty, options.interactive, UniqueFd(), 0);
}

}  // namespace nv::cli
