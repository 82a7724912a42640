// SPDX-License-Identifier: Apache-2.0
// clone + re-exec of the agent for container and exec children.
#include "agent/spawn.h"

#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <vector>

#include "common/syscall.h"

namespace nv::agent {
namespace {

// clone3 with CLONE_INTO_CGROUP (Linux 5.7, cgroup v2): the child starts in its cgroup.
// Moving it there afterwards through cgroup.procs waits for an RCU grace period, 20-70 ms in
// a TCG guest, on every container start and exec.
long cloneIntoCgroup(int clone_flags, int cgroup_fd) {
  clone_args args{};
  args.flags = static_cast<__u64>(static_cast<unsigned>(clone_flags)) | CLONE_INTO_CGROUP;
  args.exit_signal = SIGCHLD;
  args.cgroup = static_cast<__u64>(static_cast<unsigned>(cgroup_fd));
  return ::syscall(SYS_clone3, &args, sizeof(args));
}

}  // namespace

Result<Spawned> spawnChild(const std::string& self_exe, const LaunchConfig& config,
                           int clone_flags, std::array<int, 3> stdio,
                           const std::string& cgroup_procs, Reaper& reaper,
                           Reaper::ExitCallback on_exit) {
  int config_pipe[2];
  if (::pipe2(config_pipe, O_CLOEXEC) < 0) {
    return failErrno("pipe");
  }
  UniqueFd config_read(config_pipe[0]);
  UniqueFd config_write(config_pipe[1]);
  int sync_pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sync_pair) < 0) {
    return failErrno("socketpair");
  }
  UniqueFd sync_agent(sync_pair[0]);
  UniqueFd sync_child(sync_pair[1]);

  // Everything the child needs is prepared here: between clone and execve it may only make
  // async-signal-safe calls (the agent is multi-threaded).
  std::string arg0 = "nanovisor-agent";
  std::string arg1 = "--nv-child";
  char* argv[] = {arg0.data(), arg1.data(), nullptr};
  char* envp[] = {nullptr};
  const int sources[5] = {stdio[0], stdio[1], stdio[2], config_read.get(), sync_child.get()};

  UniqueFd cgroup_dir;
  if (!cgroup_procs.empty()) {
    const std::string dir = cgroup_procs.substr(0, cgroup_procs.rfind('/'));
    cgroup_dir = UniqueFd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  }

  auto lock = reaper.lock();
  // Any clone3 failure (old kernel, cgroup v1, a limit) falls back to clone + cgroup.procs,
  // which reports its own error.
  long pid = cgroup_dir ? cloneIntoCgroup(clone_flags, cgroup_dir.get()) : -1;
  const bool in_cgroup = pid >= 0;
  if (!in_cgroup) {
    pid = ::syscall(SYS_clone, static_cast<unsigned long>(clone_flags) | SIGCHLD, 0, 0, 0, 0);
  }
  if (pid < 0) {
    return failErrno("clone");
  }
  if (pid == 0) {
    int moved[5];
    for (int i = 0; i < 5; ++i) {
      moved[i] = ::fcntl(sources[i], F_DUPFD, 10);  // above every target: no clobbering
      if (moved[i] < 0) {
        _exit(126);
      }
    }
    for (int i = 0; i < 5; ++i) {
      if (::dup2(moved[i], i) < 0) {
        _exit(126);
      }
    }
    for (int fd : moved) {
      ::close(fd);  // only 0..4 may reach the child
    }
    ::execve(self_exe.c_str(), argv, envp);
    _exit(126);
  }
  reaper.watchLocked(static_cast<pid_t>(pid), std::move(on_exit));
  lock.unlock();
  sync_child.reset();
  config_read.reset();

  if (!cgroup_procs.empty() && !in_cgroup) {
    UniqueFd procs(::open(cgroup_procs.c_str(), O_WRONLY | O_CLOEXEC));
    std::string text = std::to_string(pid);
    if (!procs || ::write(procs.get(), text.data(), text.size()) < 0) {
      auto err = Error::lastErrno("move child into " + cgroup_procs);
      ::kill(static_cast<pid_t>(pid), SIGKILL);
      return Unexpected(err);
    }
  }
  std::string text = serializeLaunchConfig(config);
  const char* p = text.data();
  size_t left = text.size();
  while (left > 0) {
    ssize_t n = retryOnEintr([&] { return ::write(config_write.get(), p, left); });
    if (n <= 0) {
      auto err = Error::lastErrno("send launch config");
      ::kill(static_cast<pid_t>(pid), SIGKILL);
      return Unexpected(err);
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  config_write.reset();
  return Spawned{static_cast<pid_t>(pid), std::move(sync_agent)};
}

Result<std::string> readSyncRecord(int fd, int timeout_ms, UniqueFd* received) {
  std::string line;
  while (true) {
    pollfd pfd{fd, POLLIN, 0};
    int rc = retryOnEintr([&] { return ::poll(&pfd, 1, timeout_ms); });
    if (rc < 0) {
      return failErrno("poll child sync socket");
    }
    if (rc == 0) {
      return fail(Errc::kTimeout, "container process did not report back");
    }
    char c = 0;
    iovec iov{&c, 1};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    ssize_t n = retryOnEintr([&] { return ::recvmsg(fd, &msg, MSG_CMSG_CLOEXEC); });
    if (n < 0) {
      return failErrno("read child sync socket");
    }
    for (cmsghdr* cmsg = CMSG_FIRSTHDR(&msg); cmsg != nullptr; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
      if (cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS &&
          cmsg->cmsg_len == CMSG_LEN(sizeof(int))) {
        int passed = -1;
        std::memcpy(&passed, CMSG_DATA(cmsg), sizeof(int));
        UniqueFd owned(passed);
        if (received != nullptr) {
          *received = std::move(owned);
        }
      }
    }
    if (n == 0 || c == '\n') {
      return line;
    }
    if (line.size() < 4096) {
      line += c;
    }
  }
}

}  // namespace nv::agent
