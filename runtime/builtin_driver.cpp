// SPDX-License-Identifier: Apache-2.0
#include "runtime/builtin_driver.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <thread>

#include <fmt/format.h>

#include "common/event_fd.h"
#include "common/logging.h"
#include "common/subprocess.h"
#include "common/syscall.h"
#include "common/ttrpc/client.h"
#include "common/unique_fd.h"
#include "proto/vmm_api.pb.h"
#include "runtime/agent_client.h"
#include "runtime/cgroup.h"
#include "runtime/jail.h"
#include "runtime/qemu_driver.h"
#include "runtime/vmm_host.h"

namespace nv::runtime {
namespace {

namespace pb = nanovisor::vmm::v1;
using std::chrono::milliseconds;

constexpr const char* kVmmService = "nanovisor.vmm.v1.Vmm";
constexpr milliseconds kStartTimeout{10000};
constexpr milliseconds kApiTimeout{5000};
constexpr milliseconds kExitWait{5000};

Result<UniqueFd> listenUnix(const std::filesystem::path& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.native().size() >= sizeof(addr.sun_path)) {
    return fail(Errc::kInvalidArgument, "socket path too long: " + path.string());
  }
  std::memcpy(addr.sun_path, path.c_str(), path.native().size());
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return failErrno("socket");
  std::error_code ignored;
  std::filesystem::remove(path, ignored);
  // Bounds: sockaddr_un is a plain C struct; the cast is the sockets API's calling convention.
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    return failErrno("bind " + path.string());
  }
  ::chmod(path.c_str(), 0600);
  if (::listen(fd.get(), 4) != 0) return failErrno("listen " + path.string());
  return fd;
}

bool writeAll(int fd, const char* data, size_t len) {
  while (len > 0) {
    ssize_t n = retryOnEintr([&] { return ::send(fd, data, len, MSG_NOSIGNAL); });
    if (n <= 0) return false;
    data += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

// Bridges <dir>/agent.sock to the guest agent's vsock port through nanovisor-vmm's hybrid
// vsock socket: for each host connection (one at a time, as the agent channel allows) it
// sends "CONNECT <port>\n", waits for "OK ...", then copies bytes both ways until either side
// closes. While the agent is not listening yet (the guest is booting) the VMM refuses the
// CONNECT; the bridge retries, and the host's first request waits in the socket meanwhile.
class AgentBridge {
 public:
  // `vmm_pidfd` (duplicated) becomes readable when the VMM exits: then a waiting host
  // connection is closed at once instead of retrying until its caller's deadline.
  static Result<std::unique_ptr<AgentBridge>> start(const std::filesystem::path& listen_path,
                                                    const std::filesystem::path& vsock_uds,
                                                    uint32_t port, int vmm_pidfd) {
    NV_ASSIGN_OR_RETURN(UniqueFd listener, listenUnix(listen_path));
    NV_ASSIGN_OR_RETURN(EventFd stop, EventFd::create(0));
    UniqueFd vmm_exit(::fcntl(vmm_pidfd, F_DUPFD_CLOEXEC, 0));
    if (!vmm_exit) return failErrno("dup the VMM's pidfd");
    auto bridge = std::unique_ptr<AgentBridge>(new AgentBridge(
        std::move(listener), std::move(stop), std::move(vmm_exit), listen_path, vsock_uds, port));
    bridge->thread_ = std::thread([raw = bridge.get()] { raw->run(); });
    return bridge;
  }
  ~AgentBridge() {
    (void)stop_.write(1);
    if (thread_.joinable()) thread_.join();
    std::error_code ignored;
    std::filesystem::remove(path_, ignored);
  }
  AgentBridge(const AgentBridge&) = delete;
  AgentBridge& operator=(const AgentBridge&) = delete;

 private:
  AgentBridge(UniqueFd listener, EventFd stop, UniqueFd vmm_exit, std::filesystem::path path,
              std::filesystem::path vsock_uds, uint32_t port)
      : listener_(std::move(listener)), stop_(std::move(stop)), vmm_exit_(std::move(vmm_exit)),
        path_(std::move(path)), vsock_uds_(std::move(vsock_uds)), port_(port) {}

  // Waits for `fd` to be readable; false when stopping or on timeout.
  bool waitReadable(int fd, int timeout_ms) {
    pollfd fds[2] = {{fd, POLLIN, 0}, {stop_.fd(), POLLIN, 0}};
    int n = retryOnEintr([&] { return ::poll(fds, 2, timeout_ms); });
    return n > 0 && (fds[1].revents & POLLIN) == 0 && fds[0].revents != 0;
  }
  bool stopping() {
    pollfd fd{stop_.fd(), POLLIN, 0};
    return ::poll(&fd, 1, 0) > 0;
  }

  // One handshake attempt with the VMM; the connected vsock stream or nothing.
  std::optional<UniqueFd> connectGuest() {
    auto fd = connectUnixSocket(vsock_uds_);
    if (!fd) return std::nullopt;
    const std::string hello = fmt::format("CONNECT {}\n", port_);
    if (!writeAll(fd->get(), hello.data(), hello.size())) return std::nullopt;
    std::string line;
    while (line.size() < 64) {
      if (!waitReadable(fd->get(), 5000)) return std::nullopt;
      char c = 0;
      if (retryOnEintr([&] { return ::read(fd->get(), &c, 1); }) != 1) return std::nullopt;
      if (c == '\n') break;
      line += c;
    }
    if (line.rfind("OK ", 0) != 0) return std::nullopt;
    return std::move(*fd);
  }

  // Copies both ways until one side closes or the bridge stops.
  void splice(int host, int guest) {
    std::vector<char> buf(64 * 1024);
    for (;;) {
      pollfd fds[3] = {{host, POLLIN, 0}, {guest, POLLIN, 0}, {stop_.fd(), POLLIN, 0}};
      if (retryOnEintr([&] { return ::poll(fds, 3, -1); }) < 0 || fds[2].revents != 0) return;
      for (int i = 0; i < 2; ++i) {
        if (fds[i].revents == 0) continue;
        ssize_t n = retryOnEintr([&] { return ::read(fds[i].fd, buf.data(), buf.size()); });
        if (n <= 0 || !writeAll(fds[1 - i].fd, buf.data(), static_cast<size_t>(n))) return;
      }
    }
  }

  void run() {
    auto logger = log::get("builtin");
    while (waitReadable(listener_.get(), -1)) {
      UniqueFd host(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!host) continue;
      std::optional<UniqueFd> guest;
      // Retry until the agent listens, the host gives up (hang-up), the VMM exits or the
      // bridge stops.
      while (!(guest = connectGuest())) {
        pollfd fds[3] = {{host.get(), POLLRDHUP, 0}, {stop_.fd(), POLLIN, 0},
                         {vmm_exit_.get(), POLLIN, 0}};
        if (retryOnEintr([&] { return ::poll(fds, 3, 20); }) != 0) break;
      }
      if (!guest || stopping()) continue;
      logger->debug("agent bridge: connected to guest vsock port {}", port_);
      splice(host.get(), guest->get());
    }
  }

  UniqueFd listener_;
  EventFd stop_;
  UniqueFd vmm_exit_;
  std::filesystem::path path_;
  std::filesystem::path vsock_uds_;
  uint32_t port_;
  std::thread thread_;
};

class BuiltinVm final : public Vm {
 public:
  BuiltinVm(VmSpec spec, VmmHostFiles files, SandboxCgroup cgroup, Subprocess process,
            std::unique_ptr<ttrpc::IoThread> io, ttrpc::Client api,
            std::unique_ptr<AgentBridge> bridge)
      : spec_(std::move(spec)), files_(std::move(files)), cgroup_(std::move(cgroup)),
        process_(std::move(process)), io_(std::move(io)), api_(std::move(api)),
        bridge_(std::move(bridge)) {}
  ~BuiltinVm() override {
    kill();
    bridge_.reset();
    api_.reset();
    io_.reset();
  }

  std::filesystem::path agentSocket() const override { return spec_.dir / "agent.sock"; }
  pid_t vmmPid() const override { return process_.pid(); }

  Result<void> wait(milliseconds timeout) override {
    NV_ASSIGN_OR_RETURN(int status, process_.wait(timeout));
    recordExit(status);
    return {};
  }

  // Kill through the control API (the VMM stops its vCPUs and exits), SIGKILL as last resort.
  void kill() override {
    if (process_.exited() || process_.pid() <= 0) return;
    if (api_) {
      (void)api_->callTyped<pb::KillResponse>(kVmmService, "Kill", pb::KillRequest{}, kApiTimeout);
    }
    if (auto status = process_.wait(kExitWait)) {
      recordExit(*status);
      return;
    }
    (void)process_.signal(SIGKILL);
    if (auto status = process_.wait(kExitWait)) recordExit(*status);
  }

  Result<VmStats> stats() const override { return processStats(process_.pid()); }

  // Through the control API: Pause answers once every vCPU has parked.
  Result<void> pause() override {
    return call<pb::PauseResponse>("Pause", pb::PauseRequest{});
  }
  Result<void> resume() override {
    return call<pb::ResumeResponse>("Resume", pb::ResumeRequest{});
  }

  std::string exitReason() const override {
    std::string reason =
        exit_description_.empty() ? "nanovisor-vmm is running" : exit_description_;
    std::string log = logTail(spec_.dir / "vmm.log", 2);
    return log.empty() ? reason : reason + ": " + log;
  }

 private:
  template <class Resp, class Req>
  Result<void> call(const std::string& method, const Req& req) {
    if (!api_) return fail(Errc::kUnavailable, "nanovisor-vmm has exited: " + exitReason());
    auto resp = api_->callTyped<Resp>(kVmmService, method, req, kApiTimeout);
    if (!resp) return tl::unexpected(resp.error().wrap("nanovisor-vmm " + method));
    return {};
  }

  void recordExit(int status) {
    if (exit_description_.empty()) {
      exit_description_ = vmmExitDescription("nanovisor-vmm", status);
    }
    api_.reset();
  }

  VmSpec spec_;
  VmmHostFiles files_;    // removed after the process below is reaped (members die in reverse)
  SandboxCgroup cgroup_;  // likewise
  Subprocess process_;
  std::unique_ptr<ttrpc::IoThread> io_;
  std::optional<ttrpc::Client> api_;
  std::unique_ptr<AgentBridge> bridge_;
  std::string exit_description_;
};

}  // namespace

std::vector<std::string> builtinArgs(const VmSpec& spec, const BuiltinOptions& options) {
  std::string cmdline = baseKernelCmdline(false, "vsock") +
                        (spec.cmdline.empty() ? "" : " " + spec.cmdline);
  std::vector<std::string> a = {
      options.binary.string(),
      "--kernel", spec.kernel.string(),
      "--initramfs", spec.initramfs.string(),
      "--cmdline", cmdline,
      "--cpus", std::to_string(spec.cpus),
      "--memory", std::to_string(spec.memory_mib),
      "--console", "-",
      "--vsock-uds", (spec.dir / "vsock.sock").string(),
      "--api-sock", (spec.dir / "vmm.sock").string(),
      "--rng",
      "--log-level", options.log_level,
  };
  std::string limit;
  if (spec.disk_limit.bytes.limited()) {
    limit += ",bps=" + formatRateLimit(spec.disk_limit.bytes);
  }
  if (spec.disk_limit.ops.limited()) {
    limit += ",iops=" + formatRateLimit(spec.disk_limit.ops);
  }
  for (const auto& disk : spec.disks) {
    a.insert(a.end(), {"--disk", disk.path.string() + (disk.read_only ? ",ro" : ",rw") +
                                     ",id=" + disk.serial + limit});
  }
  return a;
}

void reapOrphanedBuiltin(const std::filesystem::path& dir, const std::string& id,
                         pid_t vmm_pid) {
  bool ours = false;
  if (vmm_pid > 0) {
    // Only if the pid was not reused: the driver's control socket is on its command line
    // (/vm/vmm.sock in the jail, <dir>/vm/vmm.sock outside).
    std::ifstream in("/proc/" + std::to_string(vmm_pid) + "/cmdline");
    const std::string cmdline{std::istreambuf_iterator<char>(in), {}};
    const std::string nul(1, '\0');
    auto has = [&](const std::string& sock) {
      return cmdline.find(nul + "--api-sock" + nul + sock + nul) != std::string::npos;
    };
    if (has((dir / "vm" / "vmm.sock").string())) {
      ours = true;
    } else if (has("/vm/vmm.sock")) {
      // Every jailed VMM says /vm/vmm.sock: this sandbox's is also in its cgroup.
      std::ifstream cgroups("/proc/" + std::to_string(vmm_pid) + "/cgroup");
      const std::string groups{std::istreambuf_iterator<char>(cgroups), {}};
      ours = groups.find("/nanovisor-" + id + "-") != std::string::npos;
    }
  }
  reapOrphanedVmm(dir, id, ours ? vmm_pid : 0);
}

Result<std::unique_ptr<Vm>> BuiltinDriver::create(const VmSpec& spec) {
  NV_TRY(spec.validate());
  if (!spec.shares.empty()) {
    return fail(Errc::kUnsupported,
                "the builtin driver has no virtio-9p for volumes (-v); use --hypervisor qemu");
  }
  NV_ASSIGN_OR_RETURN(const std::filesystem::path binary,
                      resolveVmmBinary(options_.binary.string(),
                                       "build it (ninja nanovisor-vmm) or set vmm_binary in the "
                                       "config"));
  for (const char* name : {"agent.sock", "console.log", "vmm.log"}) {
    std::error_code ignored;
    std::filesystem::remove(spec.dir / name, ignored);
  }
  NV_ASSIGN_OR_RETURN(VmmHostFiles files, VmmHostFiles::create(spec.dir, options_.jail));
  const auto vm_dir = files.vmDir();
  SpawnOptions spawn;
  // Both opened here, as root, outside the VM dir: they stay after the VM for `inspect` and
  // debugging, and the VMM cannot reach them by path.
  spawn.stdout_path = (spec.dir / "console.log").string();
  spawn.stderr_path = (spec.dir / "vmm.log").string();
  spawn.new_session = true;
  spawn.die_with_parent = true;
  // The VM as nanovisor-vmm sees it: host paths, or the jail's.
  VmSpec seen = spec;
  seen.dir = vm_dir;
  BuiltinOptions options = options_;
  options.binary = binary;
  std::optional<JailSpec> jail;
  if (options_.jail) {
    NV_ASSIGN_OR_RETURN(VmmJail prepared,
                        prepareVmmJail(spec, files, binary, "nanovisor-vmm", /*kvm=*/true));
    jail = std::move(prepared.jail);
    seen = std::move(prepared.seen);
    options.binary = prepared.binary;
    // Its own /proc/self only (subset=pid, read-only): the API's Stats reads
    // /proc/self/status for the VMM's resident memory.
    jail->proc_self = true;
  }
  SandboxCgroup cgroup;
  if (options_.cgroup) {
    NV_ASSIGN_OR_RETURN(cgroup, createVmmCgroup(spec, /*tcg=*/false, "builtin", "nanovisor-vmm"));
  }
  if (jail) jail->cgroup_procs = cgroup.procsFiles();
  spawn.argv = builtinArgs(seen, options);
  // The seccomp test hook: an unjailed VMM inherits this process's environment, hook and all;
  // a jailed one gets PATH and exactly this one variable, through env(1) (the same pid).
  const char* hook = std::getenv(kVmmTestHookEnv);
  if (jail && hook != nullptr && *hook != '\0') {
    spawn.argv.insert(spawn.argv.begin(),
                      {"/usr/bin/env", std::string(kVmmTestHookEnv) + "=" + hook});
  }
  log::get("builtin")->debug("starting {}{}",
                             jail ? "jailed (uid " + std::to_string(jail->uid) + "): " : "",
                             fmt::join(spawn.argv, " "));
  auto process = jail ? spawnJailed(*jail, spawn) : Subprocess::spawn(spawn);
  if (!process) {
    if (process.error().isErrno(ENOENT) && !jail) {
      return fail(Errc::kNotFound, options_.binary.string() +
                                       " not found; build it (ninja nanovisor-vmm) or set "
                                       "vmm_binary in the config");
    }
    return tl::unexpected(process.error());
  }
  if (!jail) NV_TRY(cgroup.join(process->pid()));  // a jailed VMM joined before it started
  // The control socket appears once the VM is built; the VMM exits at once on a bad config.
  auto io = std::make_unique<ttrpc::IoThread>();
  const auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
  Result<ttrpc::Client> api = fail(Errc::kUnavailable, "not tried");
  while (!(api = ttrpc::Client::connect(io->context(), (vm_dir / "vmm.sock").string()))) {
    if (auto status = process->wait(milliseconds(10))) {
      std::string why = logTail(spec.dir / "vmm.log", 2);
      return fail(Errc::kUnavailable, "nanovisor-vmm did not start: " +
                                          vmmExitDescription("nanovisor-vmm", *status) +
                                          (why.empty() ? "" : ": " + why));
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return fail(Errc::kTimeout, "nanovisor-vmm did not open its control socket within " +
                                      std::to_string(kStartTimeout.count()) + " ms");
    }
  }
  NV_ASSIGN_OR_RETURN(auto bridge,
                      AgentBridge::start(spec.dir / "agent.sock", vm_dir / "vsock.sock",
                                         kAgentVsockPort, process->pidfd()));
  return std::make_unique<BuiltinVm>(spec, std::move(files), std::move(cgroup),
                                     std::move(*process), std::move(io), std::move(*api),
                                     std::move(bridge));
}

}  // namespace nv::runtime
