// SPDX-License-Identifier: Apache-2.0
#include "runtime/stdio.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "common/logging.h"
#include "common/syscall.h"

namespace nv::runtime {
namespace {

namespace agentpb = nanovisor::agent::v1;
constexpr uint32_t kChunk = 256 * 1024;
constexpr auto kForever = std::chrono::hours(24 * 365);

bool writeAll(int fd, std::string_view data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = retryOnEintr([&] { return ::write(fd, data.data() + done, data.size() - done); });
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

Result<std::unique_ptr<RotatingLog>> RotatingLog::open(std::filesystem::path path,
                                                       uint64_t max_bytes) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  if (!fd) return failErrno("creating " + path.string());
  const off_t size = ::lseek(fd.get(), 0, SEEK_END);
  if (size < 0) return failErrno("seeking " + path.string());
  return std::unique_ptr<RotatingLog>(
      new RotatingLog(std::move(path), max_bytes, std::move(fd), static_cast<uint64_t>(size)));
}

bool RotatingLog::write(std::string_view data) {
  std::lock_guard lock(mutex_);
  if (!fd_) return false;
  if (size_ > 0 && size_ + data.size() > max_bytes_) {
    const auto older = path_.string() + ".1";
    UniqueFd next;
    if (::rename(path_.c_str(), older.c_str()) == 0) {
      next.reset(::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    }
    if (!next) {
      log::get("stdio")->error("rotating {}: {}", path_.string(), std::strerror(errno));
      fd_.reset();
      return false;
    }
    fd_ = std::move(next);
    size_ = 0;
  }
  if (!writeAll(fd_.get(), data)) {
    log::get("stdio")->error("writing {}: {}", path_.string(), std::strerror(errno));
    fd_.reset();
    return false;
  }
  size_ += data.size();
  return true;
}

ConsoleLogCap::ConsoleLogCap(std::filesystem::path path, uint64_t max_bytes)
    : path_(std::move(path)), max_bytes_(max_bytes), stop_(EventFd::create(EFD_NONBLOCK).value()) {
  thread_ = std::thread([this] {
    pollfd stop{stop_.fd(), POLLIN, 0};
    while (retryOnEintr([&] { return ::poll(&stop, 1, 250); }) == 0) check();
  });
}

ConsoleLogCap::~ConsoleLogCap() {
  (void)stop_.write();
  thread_.join();
}

void ConsoleLogCap::check() {
  std::lock_guard lock(mutex_);
  struct stat st{};
  if (::stat(path_.c_str(), &st) != 0 || static_cast<uint64_t>(st.st_size) <= max_bytes_) return;
  const auto older = path_.string() + ".1";
  UniqueFd in(::open(path_.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW));
  UniqueFd out(::open(older.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!in || !out) {
    log::get("stdio")->warn("rotating {}: {}", path_.string(), std::strerror(errno));
    return;
  }
  // The newest max_bytes only: a guest may have written far more since the last check.
  const off_t size = ::lseek(in.get(), 0, SEEK_END);
  off_t at = size > static_cast<off_t>(max_bytes_) ? size - static_cast<off_t>(max_bytes_) : 0;
  std::vector<char> buffer(64 << 10);
  while (at < size) {
    const ssize_t n = retryOnEintr([&] { return ::pread(in.get(), buffer.data(), buffer.size(), at); });
    if (n <= 0 || !writeAll(out.get(), {buffer.data(), static_cast<size_t>(n)})) break;
    at += n;
  }
  if (::ftruncate(in.get(), 0) != 0) {
    log::get("stdio")->warn("truncating {}: {}", path_.string(), std::strerror(errno));
  }
}

std::vector<std::filesystem::path> rotatedLogFiles(const std::filesystem::path& path) {
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  if (std::filesystem::exists(path.string() + ".1", ec)) files.emplace_back(path.string() + ".1");
  files.push_back(path);
  return files;
}

ProcessStdio::ProcessStdio(AgentClient& agent, std::string container_id, std::string exec_id)
    : agent_(agent),
      container_id_(std::move(container_id)),
      exec_id_(std::move(exec_id)),
      stop_(EventFd::create(EFD_NONBLOCK).value()) {}

ProcessStdio::~ProcessStdio() { drain(); }

void ProcessStdio::start(int in_fd, int out_fd, int err_fd) {
  auto to = [](int fd) -> Writer {
    if (fd < 0) return {};
    return [fd](const std::string& data) { return writeAll(fd, data); };
  };
  start(in_fd, to(out_fd), to(err_fd));
}

void ProcessStdio::start(int in_fd, Writer out, Writer err) {
  if (out) outputs_.emplace_back([this, out = std::move(out)] { pumpOutput("ReadStdout", out); });
  if (err) outputs_.emplace_back([this, err = std::move(err)] { pumpOutput("ReadStderr", err); });
  if (in_fd >= 0) input_ = std::thread([this, in_fd] { pumpInput(in_fd); });
}

void ProcessStdio::drain() {
  for (auto& t : outputs_) {
    if (t.joinable()) t.join();
  }
  outputs_.clear();
  (void)stop_.write();
  if (input_.joinable()) input_.join();
}

void ProcessStdio::pumpOutput(const char* method, const Writer& write) {
  agentpb::ReadStreamRequest request;
  request.set_container_id(container_id_);
  request.set_exec_id(exec_id_);
  request.set_max_bytes(kChunk);
  bool host_open = true;
  for (;;) {
    auto chunk = agent_.call<agentpb::ReadStreamResponse>(method, request, kForever);
    if (!chunk) {
      log::get("stdio")->debug("{} ended: {}", method, chunk.error().message());
      return;
    }
    if (chunk->eof()) return;
    // Keep draining after the host side closed so the workload never blocks on us.
    if (host_open && !write(chunk->data())) host_open = false;
  }
}

void ProcessStdio::pumpInput(int fd) {
  agentpb::WriteStdinRequest request;
  request.set_container_id(container_id_);
  request.set_exec_id(exec_id_);
  std::string buffer(kChunk, '\0');
  for (;;) {
    pollfd fds[2] = {{fd, POLLIN, 0}, {stop_.fd(), POLLIN, 0}};
    if (retryOnEintr([&] { return ::poll(fds, 2, -1); }) < 0) return;
    if (fds[1].revents != 0) return;
    ssize_t n = retryOnEintr([&] { return ::read(fd, buffer.data(), buffer.size()); });
    if (n <= 0) break;
    std::string_view pending(buffer.data(), static_cast<size_t>(n));
    while (!pending.empty()) {
      request.set_data(std::string(pending));
      auto written = agent_.call<agentpb::WriteStdinResponse>("WriteStdin", request);
      if (!written) return;
      pending.remove_prefix(std::min<size_t>(written->bytes_written(), pending.size()));
      if (!pending.empty() && written->bytes_written() == 0) {
        // The process's pipe is full: wait a little, unless we are told to stop.
        pollfd stop{stop_.fd(), POLLIN, 0};
        if (::poll(&stop, 1, 10) > 0) return;
      }
    }
  }
  agentpb::CloseStdinRequest close;
  close.set_container_id(container_id_);
  close.set_exec_id(exec_id_);
  (void)agent_.call<agentpb::CloseStdinResponse>("CloseStdin", close);
}

Result<void> ProcessStdio::signal(int sig) {
  agentpb::SignalProcessRequest request;
  request.set_container_id(container_id_);
  request.set_exec_id(exec_id_);
  request.set_signal(static_cast<uint32_t>(sig));
  NV_TRY(agent_.call<agentpb::SignalProcessResponse>("SignalProcess", request));
  return {};
}

Result<void> ProcessStdio::resize(unsigned rows, unsigned columns) {
  agentpb::TtyWinResizeRequest request;
  request.set_container_id(container_id_);
  request.set_exec_id(exec_id_);
  request.set_rows(rows);
  request.set_columns(columns);
  NV_TRY(agent_.call<agentpb::TtyWinResizeResponse>("TtyWinResize", request));
  return {};
}

}  // namespace nv::runtime
