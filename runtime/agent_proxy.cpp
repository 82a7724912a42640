// SPDX-License-Identifier: Apache-2.0
#include "runtime/agent_proxy.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <condition_variable>
#include <cstring>

#include "common/logging.h"
#include "common/syscall.h"
#include "common/ttrpc/blocking.h"

namespace nv::runtime {
namespace {

constexpr int kMaxInflightPerConnection = 64;
constexpr auto kDefaultTimeout = std::chrono::hours(24 * 365);

}  // namespace

struct AgentProxy::Connection {
  explicit Connection(UniqueFd f) : fd(std::move(f)) {}
  UniqueFd fd;
  std::mutex write_mutex;
  std::mutex mutex;
  std::condition_variable cv;
  int inflight = 0;
};

Result<std::unique_ptr<AgentProxy>> AgentProxy::start(const std::filesystem::path& socket,
                                                      std::shared_ptr<AgentClient> agent) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket.native().size() >= sizeof(addr.sun_path)) {
    return fail(Errc::kInvalidArgument, "socket path too long: " + socket.string());
  }
  std::memcpy(addr.sun_path, socket.c_str(), socket.native().size());
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return failErrno("socket");
  ::unlink(socket.c_str());
  const mode_t old_mask = ::umask(0177);
  // Bounds: sockaddr_un is a plain C struct; the cast is the sockets API's calling convention.
  int bound = ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  ::umask(old_mask);
  if (bound != 0) return failErrno("bind " + socket.string());
  if (::listen(fd.get(), 16) != 0) return failErrno("listen " + socket.string());
  std::unique_ptr<AgentProxy> proxy(new AgentProxy(socket, std::move(fd), std::move(agent)));
  proxy->acceptor_ = std::thread([p = proxy.get()] { p->acceptLoop(); });
  return proxy;
}

AgentProxy::~AgentProxy() { stop(); }

void AgentProxy::stop() {
  if (stopping_.exchange(true)) return;
  ::shutdown(listener_.get(), SHUT_RDWR);
  if (acceptor_.joinable()) acceptor_.join();
  {
    std::lock_guard lock(mutex_);
    for (auto& c : connections_) ::shutdown(c->fd.get(), SHUT_RDWR);
  }
  // Connection threads end once their sockets are shut down; forwards end when the agent answers or its connection is closed (see the header).
  std::unique_lock lock(mutex_);
  workers_done_.wait(lock, [&] { return active_workers_ == 0; });
  ::unlink(socket_.c_str());
}

void AgentProxy::acceptLoop() {
  while (!stopping_) {
    int fd = retryOnEintr([&] { return ::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC); });
    if (fd < 0) {
      if (stopping_ || errno == EINVAL) return;
      continue;
    }
    auto connection = std::make_shared<Connection>(UniqueFd(fd));
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    connections_.push_back(connection);
    ++active_workers_;
    std::thread([this, connection] {
      serve(connection);
      std::lock_guard done(mutex_);
      std::erase(connections_, connection);
      --active_workers_;
      workers_done_.notify_all();
    }).detach();
  }
}

void AgentProxy::serve(std::shared_ptr<Connection> c) {
  auto logger = log::get("proxy");
  for (;;) {
    auto frame = ttrpc::readFrame(c->fd.get());
    if (!frame) {
      if (!frame.error().is(Errc::kUnavailable)) {
        logger->warn("closing client connection: {}", frame.error().message());
      }
      break;
    }
    if (frame->header.type != static_cast<uint8_t>(ttrpc::MessageType::kRequest)) {
      logger->warn("closing client connection: frame type {}", frame->header.type);
      break;
    }
    auto request = ttrpc::decodeRequest(frame->payload);
    if (!request) {
      logger->warn("closing client connection: {}", request.error().message());
      break;
    }
    if (stopping_) break;
    {
      // Back-pressure: stop reading this client while too many of its calls are in flight.
      std::unique_lock lock(c->mutex);
      c->cv.wait(lock, [&] { return c->inflight < kMaxInflightPerConnection; });
      ++c->inflight;
    }
    {
      std::lock_guard lock(mutex_);
      ++active_workers_;
    }
    std::thread([this, c, stream = frame->header.stream_id, req = std::move(*request)] {
      ttrpc::ResponseMessage response;
      if (req.service != kAgentService) {
        response.status = {ttrpc::StatusCode::kUnimplemented, "unknown service " + req.service};
      } else {
        auto timeout = req.timeout_nano > 0
                           ? std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::nanoseconds(req.timeout_nano))
                           : std::chrono::duration_cast<std::chrono::milliseconds>(kDefaultTimeout);
        auto reply = agent_->callRaw(req.method, req.payload, timeout);
        if (reply) {
          response.payload = std::move(*reply);
        } else {
          response.status = ttrpc::errorToStatus(reply.error());
        }
      }
      {
        std::lock_guard write_lock(c->write_mutex);
        (void)ttrpc::writeFrame(c->fd.get(), stream, ttrpc::MessageType::kResponse,
                                ttrpc::encodeResponse(response));
      }
      {
        std::lock_guard lock(c->mutex);
        --c->inflight;
        c->cv.notify_all();
      }
      std::lock_guard lock(mutex_);
      --active_workers_;
      workers_done_.notify_all();
    }).detach();
  }
  ::shutdown(c->fd.get(), SHUT_RDWR);
}

}  // namespace nv::runtime
