// SPDX-License-Identifier: Apache-2.0
#include "shim/daemon.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/signal_set.hpp>

#include "common/logging.h"
#include "common/syscall.h"
#include "common/ttrpc/blocking.h"
#include "runtime/builtin_driver.h"
#include "runtime/config.h"
#include "runtime/qemu_driver.h"
#include "runtime/state.h"
#include "shim/bundle.h"
#include "shim/events.h"
#include "shim/task_service.h"

namespace nv::shim {
namespace {

Error errnoError(const std::string& what) {
  return Error(makeErrorCode(Errc::kUnavailable), what + ": " + std::strerror(errno));
}

Result<sockaddr_un> unixAddress(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return fail(Errc::kInvalidArgument, "socket path too long: " + path);
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

// True when something accepts connections on `path`.
bool socketIsLive(const std::string& path) {
  auto addr = unixAddress(path);
  if (!addr) return false;
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return false;
  return ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr)) == 0;
}

// True when a shim serves `path`: it accepts and answers a Task.Connect within 1 s. connect()
// alone is not proof: for a moment after a shim is killed its listening socket can still
// accept (seen with a pod's shim: containerd's `delete`s ran while it did) and never answer.
bool shimAnswers(const std::string& path) {
  auto addr = unixAddress(path);
  if (!addr) return false;
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd || ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr)) != 0) {
    return false;
  }
  const timeval timeout{1, 0};
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout) != 0 ||
      ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout) != 0) {
    return false;
  }
  const std::string request = ttrpc::encodeRequest(
      {.service = kTaskService, .method = "Connect",
       .payload = cpb::ConnectRequest().SerializeAsString()});
  return ttrpc::writeFrame(fd.get(), 1, ttrpc::MessageType::kRequest, request) &&
         ttrpc::readFrame(fd.get());
}

// True while `pid` is a running shim daemon: not gone, not a zombie waiting to be reaped, and
// not a reused pid.
bool shimRuns(pid_t pid) {
  if (pid <= 0) return false;
  const std::string proc = "/proc/" + std::to_string(pid);
  std::ifstream stat_file(proc + "/stat");
  const std::string stat{std::istreambuf_iterator<char>(stat_file), {}};
  const auto paren = stat.rfind(')');
  if (paren == std::string::npos || paren + 2 >= stat.size()) return false;
  const char state = stat[paren + 2];
  if (state == 'Z' || state == 'X') return false;
  std::ifstream cmdline_file(proc + "/cmdline");
  const std::string cmdline{std::istreambuf_iterator<char>(cmdline_file), {}};
  return cmdline.find("containerd-shim-nanovisor-v2") != std::string::npos;
}

// The socket of the shim that serves the task of `bundle`: a pod member's is its sandbox's
// (the group of the bundle's config.json annotations), anything else its own.
std::string groupSocketPath(const ShimArgs& args, const std::string& bundle) {
  nlohmann::json spec;
  if (std::ifstream in(bundle + "/config.json"); in) {
    spec = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  }
  const std::string group = spec.is_object() ? shimGroup(spec, args.id) : args.id;
  return socketPath(args.address, args.namespace_name, group);
}

std::string readSmallFile(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), {}};
}

// Removes the disk named in `record` (kOwnedRootfsFile) if it is one of the image store's
// snapshot disks (<image_root>/rootfs/snapshots/<key>.erofs), and the record.
void removeOwnedRootfs(const std::string& record, const std::filesystem::path& image_root,
                       std::string& warnings) {
  const std::filesystem::path disk = readSmallFile(record);
  if (disk.empty()) return;
  const auto snapshots = (image_root / "rootfs" / "snapshots").lexically_normal();
  if (disk.lexically_normal().parent_path() != snapshots || disk.extension() != ".erofs") {
    warnings += record + " names " + disk.string() + ", not a disk in " + snapshots.string() +
                "; left alone\n";
    return;
  }
  std::error_code ec;
  std::filesystem::remove(disk, ec);
  if (ec) warnings += "remove " + disk.string() + ": " + ec.message() + "\n";
  std::filesystem::remove(record, ec);
}

Result<runtime::RuntimeConfig> loadRuntimeConfig() {
  const char* explicit_path = std::getenv("NANOVISOR_CONFIG");
  if (explicit_path != nullptr && *explicit_path != '\0') {
    return runtime::RuntimeConfig::load(explicit_path, true);
  }
  return runtime::RuntimeConfig::load(runtime::kDefaultConfigPath, false);
}

}  // namespace

std::filesystem::path sandboxStateDir(const std::filesystem::path& cli_state_dir,
                                      const std::string& namespace_name) {
  std::filesystem::path dir = cli_state_dir;
  if (!dir.has_filename()) dir = dir.parent_path();  // trailing slash
  return dir.parent_path() / (dir.filename().string() + "-shim") / namespace_name;
}

Result<UniqueFd> bindSocket(const std::string& path) {
  NV_ASSIGN_OR_RETURN(auto addr, unixAddress(path));
  const auto parent = std::filesystem::path(path).parent_path();
  std::error_code ec;
  std::filesystem::create_directories(parent, ec);
  if (ec) return fail(Errc::kUnavailable, "mkdir " + parent.string() + ": " + ec.message());
  for (int attempt = 0; attempt < 2; ++attempt) {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return tl::unexpected(errnoError("socket"));
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0) {
      if (::chmod(path.c_str(), 0600) != 0 || ::listen(fd.get(), 64) != 0) {
        Error e = errnoError("listen on " + path);
        ::unlink(path.c_str());
        return tl::unexpected(e);
      }
      return fd;
    }
    if (errno != EADDRINUSE) return tl::unexpected(errnoError("bind " + path));
    if (socketIsLive(path)) {
      return fail(Errc::kAlreadyExists, "a shim already serves " + path);
    }
    ::unlink(path.c_str());  // stale, left by a shim that crashed
  }
  return fail(Errc::kUnavailable, "bind " + path + ": still in use after removing it");
}

Result<void> writeFileAtomic(const std::string& dir, const std::string& name,
                             const std::string& content) {
  const std::string tmp = dir + "/." + name;
  const std::string final_path = dir + "/" + name;
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << content;
    if (!out.flush()) return fail(Errc::kUnavailable, "write " + tmp);
  }
  if (::rename(tmp.c_str(), final_path.c_str()) != 0) {
    return tl::unexpected(errnoError("rename " + tmp));
  }
  return {};
}

int runStart(const ShimArgs& args, const std::string& self_exe) {
  // Everything printed here becomes containerd's idea of the address: errors only, one line.
  auto fail_with = [](const std::string& why) {
    std::fprintf(stderr, "containerd-shim-nanovisor-v2 start: %s\n", why.c_str());
    return 1;
  };
  const std::string path = groupSocketPath(args, ".");
  const std::string address = socketAddress(path);
  auto listener = bindSocket(path);
  if (!listener && listener.error().code() != makeErrorCode(Errc::kAlreadyExists)) {
    return fail_with(listener.error().message());
  }
  if (listener) {
    std::vector<std::string> argv = {self_exe, "-namespace", args.namespace_name, "-id", args.id,
                                     "-address", args.address};
    if (!args.publish_binary.empty()) {
      argv.insert(argv.end(), {"-publish-binary", args.publish_binary});
    }
    if (args.debug) argv.emplace_back("-debug");
    std::vector<char*> c_argv;
    for (auto& a : argv) c_argv.push_back(a.data());
    c_argv.push_back(nullptr);
    const int listen_fd = listener->get();
    pid_t pid = ::fork();
    if (pid < 0) return fail_with(std::string("fork: ") + std::strerror(errno));
    if (pid == 0) {
      // The daemon: own session, listener on fd 3, nothing of containerd's pipe kept.
      ::setsid();
      int null_fd = ::open("/dev/null", O_RDWR);
      if (null_fd < 0) ::_exit(127);
      for (int fd = 0; fd < 3; ++fd) ::dup2(null_fd, fd);
      // dup2 onto itself keeps FD_CLOEXEC: clear it explicitly.
      if (listen_fd == 3) {
        if (::fcntl(3, F_SETFD, 0) != 0) ::_exit(127);
      } else if (::dup2(listen_fd, 3) < 0) {
        ::_exit(127);
      }
      ::execv(self_exe.c_str(), c_argv.data());
      ::_exit(127);
    }
    (void)writeFileAtomic(".", "shim.pid", std::to_string(pid));
  }
  if (auto written = writeFileAtomic(".", "address", address); !written) {
    return fail_with(written.error().message());
  }
  std::fputs(address.c_str(), stdout);
  return 0;
}

int runDelete(const ShimArgs& args) {
  std::string bundle = args.bundle;
  if (bundle.empty()) bundle = std::filesystem::current_path().string();
  std::string warnings;
  // The rootfs is never mounted by this shim, but the contract says delete unmounts it.
  if (::umount2((bundle + "/rootfs").c_str(), MNT_DETACH) != 0 && errno != EINVAL &&
      errno != ENOENT) {
    warnings += "umount " + bundle + "/rootfs: " + std::strerror(errno) + "\n";
  }
  const std::string path = groupSocketPath(args, bundle);
  // containerd runs `delete` after every disconnect, also while the shim lives on.
  const bool shim_serves = shimAnswers(path);
  cpb::DeleteResponse response;
  // A sandbox whose shim is gone (killed, crashed): stop what is left of its VM, its host
  // cgroup and jail, and remove its state. Only this task's sandbox; a live shim keeps its own.
  if (auto config = loadRuntimeConfig(); config) {
    const std::string sandbox_id = sandboxIdFor(args.id);
    runtime::StateStore store(sandboxStateDir(config->state_dir, args.namespace_name));
    if (auto state = store.load(sandbox_id); state) {
      if (state->vmm_pid > 0) response.set_pid(static_cast<uint32_t>(state->vmm_pid));
      if (!shimRuns(state->owner_pid)) {
        if (state->driver == "qemu") {
          runtime::reapOrphanedQemu(store.dir(sandbox_id), sandbox_id, state->vmm_pid);
        } else if (state->driver == "builtin") {
          runtime::reapOrphanedBuiltin(store.dir(sandbox_id), sandbox_id, state->vmm_pid);
        } else if (state->vmm_pid > 0) {
          ::kill(state->vmm_pid, SIGKILL);
        }
        if (auto removed = store.remove(sandbox_id); !removed) {
          warnings += removed.error().message() + "\n";
        }
      }
    }
    // The rootfs disk built from this task's snapshot, if its shim died before Delete.
    const std::string shim_pid = readSmallFile(bundle + "/shim.pid");
    if (!shim_serves && !shimRuns(std::atoi(shim_pid.c_str()))) {
      removeOwnedRootfs(bundle + "/" + kOwnedRootfsFile, config->image_root, warnings);
    }
  } else {
    warnings += config.error().message() + "\n";
  }
  if (!shim_serves) ::unlink(path.c_str());

  response.set_exit_status(137);  // 128 + SIGKILL: what containerd's shims report here
  *response.mutable_exited_at() = nowTimestamp();
  const std::string bytes = response.SerializeAsString();
  std::fwrite(bytes.data(), 1, bytes.size(), stdout);
  if (!warnings.empty()) std::fputs(warnings.c_str(), stderr);
  return 0;
}

int runDaemon(const ShimArgs& args) {
  ::signal(SIGPIPE, SIG_IGN);
  // containerd copies the bundle's `log` FIFO into its own log; never block on it.
  if (int log_fd = ::open("log", O_WRONLY | O_NONBLOCK | O_CLOEXEC); log_fd >= 0) {
    ::dup2(log_fd, 2);
    ::close(log_fd);
  }
  if (auto logged = log::init("containerd-shim-nanovisor-v2", args.debug ? "debug" : "",
                              spdlog::level::info);
      !logged) {
    std::fprintf(stderr, "%s\n", logged.error().message().c_str());
  }
  auto logger = log::get("shim");
  auto config = loadRuntimeConfig();
  if (!config) {
    logger->error("config: {}", config.error().message());
    return 1;
  }
  // The listener handed over on fd 3 must not leak into the VMM or helpers this daemon
  // starts: a copy held by a child keeps the socket "live" (connectable) after the daemon died.
  if (::fcntl(3, F_SETFD, FD_CLOEXEC) != 0) {
    logger->error("fd 3 (the listening socket from start): {}", std::strerror(errno));
    return 1;
  }
  // The socket to remove at exit is the one handed over on fd 3.
  std::string socket_path;
  {
    sockaddr_un addr{};
    socklen_t len = sizeof(addr);
    if (::getsockname(3, reinterpret_cast<sockaddr*>(&addr), &len) == 0 && addr.sun_path[0]) {
      socket_path = addr.sun_path;
    }
  }
  const char* ttrpc_address = std::getenv("TTRPC_ADDRESS");
  {
    boost::asio::io_context io;
    EventPublisher events(ttrpc_address != nullptr ? ttrpc_address : "", args.namespace_name);
    ttrpc::Server server(io);
    // Stops on the next loop turn, outside the handler that asked for it.
    boost::asio::steady_timer stopper(io);
    auto stop = [&] {
      stopper.expires_after(std::chrono::milliseconds(0));
      stopper.async_wait([&](const boost::system::error_code& ec) {
        if (ec) return;
        server.stop();
        io.stop();
      });
    };
    TaskService service({.namespace_name = args.namespace_name,
                         .runtime = *config,
                         .sandbox_state_dir = sandboxStateDir(config->state_dir, args.namespace_name),
                         .on_shutdown = stop},
                        events);
    service.registerOn(server);
    if (auto served = server.serveListener(UniqueFd(3)); !served) {
      logger->error("serving fd 3: {}", served.error().message());
      return 1;
    }
    boost::asio::signal_set signals(io, SIGTERM, SIGINT);
    signals.async_wait([&](const boost::system::error_code& ec, int) {
      if (!ec) stop();
    });
    logger->info("serving task {} (namespace {})", args.id, args.namespace_name);
    io.run();
    signals.cancel();
    server.stop();
    if (!socket_path.empty()) ::unlink(socket_path.c_str());
  }
  logger->info("shim for {} exits", args.id);
  return 0;
}

}  // namespace nv::shim
