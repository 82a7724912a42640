// SPDX-License-Identifier: Apache-2.0
#include "common/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <map>

#include "common/syscall.h"

extern char** environ;

namespace nv {
namespace {

int pidfdOpen(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

// Builds the child's environment: the inherited one with `extra` added or replaced.
std::vector<std::string> buildEnv(const std::vector<std::string>& extra) {
  std::map<std::string, std::string> vars;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv(*e);
    vars[kv.substr(0, kv.find('='))] = kv;
  }
  for (const auto& kv : extra) {
    vars[kv.substr(0, kv.find('='))] = kv;
  }
  std::vector<std::string> out;
  out.reserve(vars.size());
  for (auto& [key, kv] : vars) {
    out.push_back(std::move(kv));
  }
  return out;
}

// Child side after fork(): only async-signal-safe calls until exec.
[[noreturn]] void execChild(const SpawnOptions& o, char* const* argv, char* const* envp,
                            int stdin_fd, int stdout_fd, int stderr_fd, int report_fd) {
  auto die = [&](int err) {
    // Tell the parent why exec did not happen.
    (void)!::write(report_fd, &err, sizeof(err));
    ::_exit(127);
  };
  if (o.die_with_parent && ::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) die(errno);
  if (o.new_session && ::setsid() < 0) die(errno);
  sigset_t all;
  sigemptyset(&all);
  ::sigprocmask(SIG_SETMASK, &all, nullptr);
  for (int sig = 1; sig < NSIG; ++sig) ::signal(sig, SIG_DFL);
  if (stdin_fd >= 0 && ::dup2(stdin_fd, 0) < 0) die(errno);
  if (stdout_fd >= 0 && ::dup2(stdout_fd, 1) < 0) die(errno);
  if (stderr_fd >= 0 && ::dup2(stderr_fd, 2) < 0) die(errno);
  ::execvpe(argv[0], argv, envp);
  die(errno);
  ::_exit(127);
}

std::vector<char*> cStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

Result<UniqueFd> openOutput(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return failErrno("open " + path);
  return UniqueFd(fd);
}

}  // namespace

Result<Subprocess> Subprocess::spawn(const SpawnOptions& options) {
  if (options.argv.empty()) {
    return fail(Errc::kInvalidArgument, "spawn: empty argv");
  }
  std::vector<std::string> argv_strings = options.argv;
  std::vector<std::string> env_strings = buildEnv(options.extra_env);
  std::vector<char*> argv = cStrings(argv_strings);
  std::vector<char*> envp = cStrings(env_strings);

  UniqueFd stdin_fd(::open(options.stdin_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!stdin_fd) return failErrno("open " + options.stdin_path);
  UniqueFd stdout_fd;
  UniqueFd stderr_fd;
  if (!options.stdout_path.empty()) {
    NV_ASSIGN_OR_RETURN(stdout_fd, openOutput(options.stdout_path));
  }
  if (options.stderr_path == "=stdout") {
    stderr_fd = UniqueFd(stdout_fd ? ::fcntl(stdout_fd.get(), F_DUPFD_CLOEXEC, 3)
                                   : ::fcntl(1, F_DUPFD_CLOEXEC, 3));
  } else if (!options.stderr_path.empty()) {
    NV_ASSIGN_OR_RETURN(stderr_fd, openOutput(options.stderr_path));
  }

  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) return failErrno("pipe2");
  UniqueFd report_read(report[0]);
  UniqueFd report_write(report[1]);

  pid_t pid = ::fork();
  if (pid < 0) return failErrno("fork");
  if (pid == 0) {
    execChild(options, argv.data(), envp.data(), stdin_fd.get(), stdout_fd.get(),
              stderr_fd.get(), report_write.get());
  }
  report_write.reset();
  int child_errno = 0;
  ssize_t n = retryOnEintr([&] { return ::read(report_read.get(), &child_errno, sizeof(child_errno)); });
  UniqueFd pidfd(pidfdOpen(pid));
  Subprocess child(pid, std::move(pidfd));
  if (n == sizeof(child_errno)) {
    (void)child.wait(std::chrono::milliseconds(1000));
    return failErrno(child_errno, "exec " + options.argv[0]);
  }
  if (!child.pidfd_) {
    return failErrno("pidfd_open");
  }
  return child;
}

Subprocess& Subprocess::operator=(Subprocess&& other) noexcept {
  if (this != &other) {
    killAndReap();
    pid_ = std::exchange(other.pid_, -1);
    pidfd_ = std::move(other.pidfd_);
    status_ = std::exchange(other.status_, std::nullopt);
  }
  return *this;
}

Subprocess::~Subprocess() { killAndReap(); }

void Subprocess::killAndReap() noexcept {
  if (pid_ > 0 && !status_) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    retryOnEintr([&] { return ::waitpid(pid_, &status, 0); });
  }
  pid_ = -1;
}

Result<void> Subprocess::signal(int sig) const {
  if (pid_ <= 0 || status_) return {};
  if (::syscall(SYS_pidfd_send_signal, pidfd_.get(), sig, nullptr, 0) != 0 && errno != ESRCH) {
    return failErrno("signal " + std::to_string(sig) + " to pid " + std::to_string(pid_));
  }
  return {};
}

Result<int> Subprocess::wait(std::chrono::milliseconds timeout) {
  if (status_) return *status_;
  if (pid_ <= 0) return fail(Errc::kInvalidArgument, "wait on a released process");
  pollfd pfd{pidfd_.get(), POLLIN, 0};
  int ready = retryOnEintr([&] { return ::poll(&pfd, 1, static_cast<int>(timeout.count())); });
  if (ready < 0) return failErrno("poll pidfd");
  if (ready == 0) {
    return fail(Errc::kTimeout, "pid " + std::to_string(pid_) + " still running");
  }
  int status = 0;
  if (retryOnEintr([&] { return ::waitpid(pid_, &status, 0); }) < 0) {
    return failErrno("waitpid " + std::to_string(pid_));
  }
  status_ = status;
  return status;
}

pid_t Subprocess::release() noexcept {
  pidfd_.reset();
  return std::exchange(pid_, -1);
}

int waitStatusToExitCode(int status) noexcept {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

Result<RunResult> runCommand(const std::vector<std::string>& argv,
                             std::chrono::milliseconds timeout, size_t max_output) {
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return failErrno("pipe2");
  UniqueFd out_read(out[0]);
  UniqueFd out_write(out[1]);
  std::string path = "/proc/self/fd/" + std::to_string(out_write.get());
  SpawnOptions options;
  options.argv = argv;
  options.stdout_path = path;
  options.stderr_path = "=stdout";
  options.die_with_parent = true;
  NV_ASSIGN_OR_RETURN(Subprocess child, Subprocess::spawn(options));
  out_write.reset();

  RunResult result;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[4096];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      return fail(Errc::kTimeout, argv[0] + " did not finish in " +
                                      std::to_string(timeout.count()) + " ms");
    }
    pollfd pfd{out_read.get(), POLLIN, 0};
    int ready = retryOnEintr([&] { return ::poll(&pfd, 1, static_cast<int>(left.count())); });
    if (ready < 0) return failErrno("poll");
    if (ready == 0) continue;
    ssize_t n = retryOnEintr([&] { return ::read(out_read.get(), buf, sizeof(buf)); });
    if (n <= 0) break;
    size_t room = max_output - std::min(max_output, result.output.size());
    result.output.append(buf, std::min(room, static_cast<size_t>(n)));
  }
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  NV_ASSIGN_OR_RETURN(int status, child.wait(std::max(left, std::chrono::milliseconds(0))));
  result.exit_code = waitStatusToExitCode(status);
  return result;
}

}  // namespace nv
