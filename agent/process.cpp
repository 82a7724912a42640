// SPDX-License-Identifier: Apache-2.0
// Process stdio pumps, stdin writes and exit bookkeeping.
#include "agent/process.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <system_error>
#include <thread>
#include <vector>

#include "common/logging.h"
#include "common/syscall.h"

namespace nv::agent {
namespace {

int64_t nowUnixNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Result<std::pair<UniqueFd, UniqueFd>> makePipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) < 0) {
    return failErrno("pipe");
  }
  return std::pair{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

}  // namespace

Result<Stdio> makeStdio(bool tty) {
  Stdio s;
  s.tty = tty;
  if (tty) {
    for (UniqueFd* fd : {&s.child_in, &s.child_out, &s.child_err}) {
      fd->reset(::open("/dev/null", O_RDWR | O_CLOEXEC));
      if (!*fd) {
        return failErrno("open /dev/null");
      }
    }
    return s;
  }
  NV_ASSIGN_OR_RETURN(auto in, makePipe());
  NV_ASSIGN_OR_RETURN(auto out, makePipe());
  NV_ASSIGN_OR_RETURN(auto err, makePipe());
  s.child_in = std::move(in.first);
  s.in = std::move(in.second);
  s.out = std::move(out.first);
  s.child_out = std::move(out.second);
  s.err = std::move(err.first);
  s.child_err = std::move(err.second);
  return s;
}

Process::Process(std::string exec_id, Stdio stdio)
    : exec_id_(std::move(exec_id)),
      tty_(stdio.tty),
      stdout_(std::make_shared<StreamBuffer>(kStreamBufferBytes)),
      stderr_(std::make_shared<StreamBuffer>(kStreamBufferBytes)) {
  if (tty_) {
    stderr_->close();  // a terminal has one output stream; stdout waits for attachTerminal
    return;
  }
  stdin_ = std::move(stdio.in);
  ::fcntl(stdin_.get(), F_SETFL, ::fcntl(stdin_.get(), F_GETFL) | O_NONBLOCK);
  startPump(std::move(stdio.out), stdout_);
  startPump(std::move(stdio.err), stderr_);
}

void Process::attachTerminal(UniqueFd master) {
  std::lock_guard l(mutex_);
  UniqueFd out(::fcntl(master.get(), F_DUPFD_CLOEXEC, 0));
  tty_master_.reset(::fcntl(master.get(), F_DUPFD_CLOEXEC, 0));
  ::fcntl(master.get(), F_SETFL, ::fcntl(master.get(), F_GETFL) | O_NONBLOCK);
  stdin_ = std::move(master);
  startPump(std::move(out), stdout_);
}

Process::~Process() { cancelStreams(); }

void Process::startPump(UniqueFd fd, std::shared_ptr<StreamBuffer> buffer) {
  if (!fd) {
    buffer->close();
    return;
  }
  // The thread owns the fd and a reference to the buffer; it ends at EOF (all writers of the
  // pipe gone, or EIO on a pty whose slave closed) or when the buffer is cancelled.
  // Thread creation fails (EAGAIN) when a workload fills the guest's task table: the stream
  // then ends at once (the exception must not reach PID 1's top level).
  auto pump = [fd = std::move(fd), buffer] {
    std::vector<uint8_t> chunk(64 * 1024);
    while (true) {
      ssize_t n = retryOnEintr([&] { return ::read(fd.get(), chunk.data(), chunk.size()); });
      if (n < 0 && errno == EAGAIN) {
        // A pty master shares O_NONBLOCK with the stdin side: wait for data.
        pollfd pfd{fd.get(), POLLIN, 0};
        retryOnEintr([&] { return ::poll(&pfd, 1, -1); });
        continue;
      }
      if (n <= 0) {
        break;
      }
      if (!buffer->write(std::span<const uint8_t>(chunk.data(), static_cast<size_t>(n)))) {
        break;
      }
    }
    buffer->close();
  };
  try {
    std::thread(std::move(pump)).detach();
  } catch (const std::system_error& e) {
    log::get("agent")->warn("no thread for a process stream: {}", e.what());
    buffer->close();
  }
}

pid_t Process::pid() const {
  std::lock_guard l(mutex_);
  return pid_;
}

void Process::setPid(pid_t pid) {
  std::lock_guard l(mutex_);
  pid_ = pid;
}

void Process::onExit(int wait_status) {
  ExitInfo info;
  info.exited_at_ns = nowUnixNanos();
  if (WIFSIGNALED(wait_status)) {
    info.signalled = true;
    info.signal = WTERMSIG(wait_status);
    info.exit_status = 128 + info.signal;
  } else {
    info.exit_status = WEXITSTATUS(wait_status);
  }
  std::lock_guard l(mutex_);
  exit_ = info;
  exited_cv_.notify_all();
}

std::optional<ExitInfo> Process::exitInfo() const {
  std::lock_guard l(mutex_);
  return exit_;
}

ExitInfo Process::wait() {
  std::unique_lock l(mutex_);
  exited_cv_.wait(l, [&] { return exit_.has_value(); });
  waited_ = true;
  return *exit_;
}

bool Process::collected() const {
  {
    std::lock_guard l(mutex_);
    if (!waited_) return false;
  }
  return stdout_->finished() && stderr_->finished();
}

Result<size_t> Process::writeStdin(std::span<const uint8_t> data) {
  std::unique_lock l(mutex_);
  if (!stdin_) {
    return failErrno(EPIPE, "stdin is closed");
  }
  int fd = stdin_.get();
  l.unlock();
  if (data.size() > kMaxChunkBytes) {
    data = data.first(kMaxChunkBytes);
  }
  size_t written = 0;
  while (written < data.size()) {
    ssize_t n = ::write(fd, data.data() + written, data.size() - written);
    if (n > 0) {
      written += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 && errno == EAGAIN) {
      if (written > 0) {
        break;  // partial write: let the host come back for the rest
      }
      pollfd pfd{fd, POLLOUT, 0};
      if (retryOnEintr([&] { return ::poll(&pfd, 1, 1000); }) <= 0) {
        break;  // the process is not reading; 0 bytes, the host retries
      }
      continue;
    }
    if (errno == EPIPE || errno == EIO) {
      return failErrno(EPIPE, "stdin: the process closed it");
    }
    return failErrno("write stdin");
  }
  return written;
}

void Process::closeStdin() {
  std::lock_guard l(mutex_);
  if (tty_ && stdin_) {
    // A terminal has no half-close: send EOF (^D) as a line discipline would.
    const char eot = 4;
    (void)!::write(stdin_.get(), &eot, 1);
    return;
  }
  stdin_.reset();
}

StreamBuffer::ReadResult Process::readStdout(size_t max_bytes) {
  return stdout_->read(max_bytes);
}

StreamBuffer::ReadResult Process::readStderr(size_t max_bytes) {
  return stderr_->read(max_bytes);
}

Result<void> Process::resize(uint16_t rows, uint16_t columns) {
  std::lock_guard l(mutex_);
  if (!tty_master_) {
    return fail(Errc::kInvalidArgument, "process " + exec_id_ + " has no terminal");
  }
  winsize ws{rows, columns, 0, 0};
  if (::ioctl(tty_master_.get(), TIOCSWINSZ, &ws) < 0) {
    return failErrno("TIOCSWINSZ");
  }
  return {};
}

Result<void> Process::signal(int sig) {
  std::lock_guard l(mutex_);
  if (exit_ || pid_ <= 0) {
    return failErrno(ESRCH, "process already exited");
  }
  if (::kill(pid_, sig) < 0) {
    return failErrno("kill " + std::to_string(pid_));
  }
  return {};
}

void Process::cancelStreams() {
  stdout_->cancel();
  stderr_->cancel();
}

}  // namespace nv::agent
