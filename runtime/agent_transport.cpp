// SPDX-License-Identifier: Apache-2.0
// The agent channel client: one Unix-socket connection to the agent (through the VM's
// virtio-serial or vsock bridge, or through a sandbox's api.sock proxy), any number of
// concurrent blocking calls matched by ttrpc stream id; a reader thread completes them.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>

#include "common/logging.h"
#include "common/ttrpc/blocking.h"
#include "common/unique_fd.h"
#include "runtime/agent_client.h"

namespace nv::runtime {
namespace {

using std::chrono::milliseconds;

class UnixTransport final : public AgentTransport {
 public:
  explicit UnixTransport(UniqueFd fd) : fd_(std::move(fd)) {
    reader_ = std::thread([this] { readLoop(); });
  }
  ~UnixTransport() override {
    ::shutdown(fd_.get(), SHUT_RDWR);
    if (reader_.joinable()) reader_.join();
  }
  void close() override { ::shutdown(fd_.get(), SHUT_RDWR); }
  UnixTransport(const UnixTransport&) = delete;
  UnixTransport& operator=(const UnixTransport&) = delete;

  Result<std::string> call(const std::string& method, const std::string& payload,
                           milliseconds timeout) override {
    const std::string body = ttrpc::encodeRequest(
        {.service = kAgentService, .method = method, .payload = payload,
         .timeout_nano = std::chrono::duration_cast<std::chrono::nanoseconds>(timeout).count()});
    std::unique_lock lock(mutex_);
    if (closed_) return fail(Errc::kUnavailable, "agent " + method + ": connection closed");
    const uint32_t stream = next_stream_;
    next_stream_ += 2;
    Pending& pending = pending_[stream];
    lock.unlock();
    Result<void> sent;
    {
      std::lock_guard write_lock(write_mutex_);
      sent = ttrpc::writeFrame(fd_.get(), stream, ttrpc::MessageType::kRequest, body);
    }
    lock.lock();
    if (!sent) {
      pending_.erase(stream);
      return tl::unexpected(sent.error().wrap("agent " + method));
    }
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    const bool finished = cv_.wait_until(lock, deadline, [&] { return pending.done || closed_; });
    Pending result = std::move(pending);
    pending_.erase(stream);
    if (!finished) {
      return fail(Errc::kTimeout, "agent " + method + ": no answer in " +
                                      std::to_string(timeout.count()) + " ms");
    }
    if (!result.done) return fail(Errc::kUnavailable, "agent " + method + ": connection closed");
    if (const ttrpc::Status& status = result.response.status; status.code != ttrpc::StatusCode::kOk) {
      // Users read the agent's own message; the error keeps the status's class of failure.
      const Error error = ttrpc::statusToError(static_cast<int32_t>(status.code), status.message);
      return tl::unexpected(Error(error.code(), status.message));
    }
    return std::move(result.response.payload);
  }

 private:
  struct Pending {
    bool done = false;
    ttrpc::ResponseMessage response;
  };

  void readLoop() {
    for (;;) {
      auto frame = ttrpc::readFrame(fd_.get());
      if (!frame) {
        if (!frame.error().is(Errc::kUnavailable)) {
          log::get("agent-client")->warn("closing agent connection: {}", frame.error().message());
        }
        break;
      }
      if (frame->header.type != static_cast<uint8_t>(ttrpc::MessageType::kResponse)) {
        log::get("agent-client")->warn("closing agent connection: frame type {}",
                                       frame->header.type);
        break;
      }
      auto response = ttrpc::decodeResponse(frame->payload);
      if (!response) {
        log::get("agent-client")->warn("closing agent connection: {}", response.error().message());
        break;
      }
      std::lock_guard lock(mutex_);
      if (auto it = pending_.find(frame->header.stream_id); it != pending_.end()) {
        it->second.done = true;
        it->second.response = std::move(*response);
        cv_.notify_all();
      }
    }
    ::shutdown(fd_.get(), SHUT_RDWR);
    std::lock_guard lock(mutex_);
    closed_ = true;
    cv_.notify_all();
  }

  UniqueFd fd_;
  std::mutex write_mutex_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::map<uint32_t, Pending> pending_;
  uint32_t next_stream_ = 1;
  bool closed_ = false;
  std::thread reader_;
};

}  // namespace

Result<UniqueFd> connectUnixSocket(const std::filesystem::path& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.native().size() >= sizeof(addr.sun_path)) {
    return fail(Errc::kInvalidArgument, "socket path too long: " + path.string());
  }
  std::memcpy(addr.sun_path, path.c_str(), path.native().size());
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return failErrno("socket");
  // Bounds: sockaddr_un is a plain C struct; the cast is the sockets API's calling convention.
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    return failErrno("connect " + path.string());
  }
  return fd;
}

std::unique_ptr<AgentTransport> makeUnixTransport(UniqueFd fd) {
  return std::make_unique<UnixTransport>(std::move(fd));
}

Result<std::unique_ptr<AgentClient>> AgentClient::connect(const std::filesystem::path& socket,
                                                          milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  Result<UniqueFd> fd = fail(Errc::kUnavailable, "not tried");
  while (!(fd = connectUnixSocket(socket))) {
    if (std::chrono::steady_clock::now() >= deadline) return tl::unexpected(fd.error());
    std::this_thread::sleep_for(milliseconds(1));
  }
  return std::make_unique<AgentClient>(makeUnixTransport(std::move(*fd)));
}

}  // namespace nv::runtime
