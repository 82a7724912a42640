// SPDX-License-Identifier: Apache-2.0
#include "runtime/stdio.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/logging.h"
#include "common/syscall.h"

namespace nv::runtime {
namespace {

namespace agentpb = nanovisor::agent::v1;
constexpr uint32_t kChunk = 256 * 1024;
constexpr auto kForever = std::chrono::hours(24 * 365);

bool writeAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = retryOnEintr([&] { return ::write(fd, data.data() + done, data.size() - done); });
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

ProcessStdio::ProcessStdio(AgentClient& agent, std::string container_id, std::string exec_id)
    : agent_(agent),
      container_id_(std::move(container_id)),
      exec_id_(std::move(exec_id)),
      stop_(EventFd::create(EFD_NONBLOCK).value()) {}

ProcessStdio::~ProcessStdio() { drain(); }

void ProcessStdio::start(int in_fd, int out_fd, int err_fd) {
  if (out_fd >= 0) outputs_.emplace_back([this, out_fd] { pumpOutput("ReadStdout", out_fd); });
  if (err_fd >= 0) outputs_.emplace_back([this, err_fd] { pumpOutput("ReadStderr", err_fd); });
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

void ProcessStdio::pumpOutput(const char* method, int fd) {
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
    if (host_open && !writeAll(fd, chunk->data())) host_open = false;
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
