// SPDX-License-Identifier: Apache-2.0
// ttrpc transport for AgentService.
//
// Frames, messages and status codes are common/ttrpc's (blocking.h); the agent keeps its own
// threading: a reader per connection and a thread per request, since its handlers block
// (WaitProcess until the process exits, ReadStdout until output arrives).
#include "agent/rpc_server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>

#include "common/logging.h"
#include "common/syscall.h"
#include "common/ttrpc/blocking.h"

namespace nv::agent {
namespace {

constexpr int kMaxInflight = 256;

// A method handler: request payload -> status and response payload.
using Reply = ttrpc::ResponseMessage;
using Handler = std::function<Reply(AgentService&, const std::string&)>;

template <class Req, class Resp>
Handler bind(Result<Resp> (AgentService::*method)(const Req&)) {
  return [method](AgentService& service, const std::string& payload) {
    Req req;
    if (!req.ParseFromString(payload)) {
      return Reply{{ttrpc::StatusCode::kInvalidArgument,
                    "request does not parse as " + req.GetTypeName()}, {}};
    }
    Result<Resp> resp = (service.*method)(req);
    if (!resp) {
      return Reply{ttrpc::errorToStatus(resp.error()), {}};
    }
    return Reply{{}, resp->SerializeAsString()};
  };
}

const std::map<std::string, Handler>& handlers() {
  static const std::map<std::string, Handler> table = {
      {"CreateSandbox", bind(&AgentService::createSandbox)},
      {"DestroySandbox", bind(&AgentService::destroySandbox)},
      {"CreateContainer", bind(&AgentService::createContainer)},
      {"StartContainer", bind(&AgentService::startContainer)},
      {"RemoveContainer", bind(&AgentService::removeContainer)},
      {"ExecProcess", bind(&AgentService::execProcess)},
      {"SignalProcess", bind(&AgentService::signalProcess)},
      {"WaitProcess", bind(&AgentService::waitProcess)},
      {"WriteStdin", bind(&AgentService::writeStdin)},
      {"CloseStdin", bind(&AgentService::closeStdin)},
      {"ReadStdout", bind(&AgentService::readStdout)},
      {"ReadStderr", bind(&AgentService::readStderr)},
      {"TtyWinResize", bind(&AgentService::ttyWinResize)},
      {"Stats", bind(&AgentService::stats)},
      {"GetOOMEvent", bind(&AgentService::getOomEvent)},
      {"ListProcesses", bind(&AgentService::listProcesses)},
      {"Health", bind(&AgentService::health)},
      {"Version", bind(&AgentService::version)},
  };
  return table;
}

// One connection: a reader loop (the caller's thread) and a thread per request.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(AgentService& service, std::shared_ptr<UniqueFd> fd)
      : service_(service), fd_(fd->get()), owned_fd_(std::move(fd)) {}

  // After this, responses of requests still running are dropped (the session is over).
  void close() {
    std::lock_guard l(write_mutex_);
    closed_ = true;
  }

  // Reads requests until EOF or an error; returns the reason.
  Result<void> serve() {
    while (true) {
      NV_ASSIGN_OR_RETURN(ttrpc::Frame frame, ttrpc::readFrame(fd_));
      if (frame.header.type != static_cast<uint8_t>(ttrpc::MessageType::kRequest)) {
        NV_LOG_RATE_LIMITED(log::get("agent"), spdlog::level::warn,
                            "ignoring ttrpc message type {}", frame.header.type);
        continue;
      }
      dispatch(frame.header.stream_id, frame.payload);
    }
  }

 private:
  void dispatch(uint32_t stream, const std::string& payload) {
    auto req = ttrpc::decodeRequest(payload);
    if (!req) {
      send(stream, Reply{{ttrpc::StatusCode::kInvalidArgument, "malformed ttrpc request"}, {}});
      return;
    }
    auto it = handlers().find(req->method);
    if (req->service != kServiceName || it == handlers().end()) {
      send(stream, Reply{{ttrpc::StatusCode::kUnimplemented,
                          "unknown method " + req->service + "/" + req->method}, {}});
      return;
    }
    if (inflight_.fetch_add(1) >= kMaxInflight) {
      inflight_.fetch_sub(1);
      send(stream, Reply{{ttrpc::StatusCode::kResourceExhausted, "too many requests in flight"}, {}});
      return;
    }
    auto self = shared_from_this();
    const Handler& handler = it->second;
    // A workload that fills the guest's task table (a fork bomb) makes thread creation fail
    // with EAGAIN: answer that, never let the exception end PID 1 (a guest panic).
    try {
      std::thread([self, stream, &handler, body = std::move(req->payload)] {
        Reply reply;
        try {
          reply = handler(self->service_, body);
        } catch (const std::exception& e) {
          reply = Reply{{ttrpc::StatusCode::kInternal, std::string("internal error: ") + e.what()}, {}};
        }
        self->send(stream, reply);
        self->inflight_.fetch_sub(1);
      }).detach();
    } catch (const std::system_error& e) {
      inflight_.fetch_sub(1);
      send(stream, Reply{{ttrpc::StatusCode::kResourceExhausted,
                          std::string("the agent cannot start a thread: ") + e.what()}, {}});
    }
  }

  void send(uint32_t stream, const Reply& reply) {
    std::string body = ttrpc::encodeResponse(reply);
    if (body.size() > ttrpc::kMaxMessageLength) {
      body = ttrpc::encodeResponse(
          {{ttrpc::StatusCode::kResourceExhausted, "response larger than 4 MiB"}, {}});
    }
    std::lock_guard l(write_mutex_);
    if (closed_) {
      return;
    }
    // A failed write means the host went away; it will not read this response.
    (void)ttrpc::writeFrame(fd_, stream, ttrpc::MessageType::kResponse, body);
  }

  AgentService& service_;
  const int fd_;
  std::shared_ptr<UniqueFd> owned_fd_;  // shared: handler threads keep it open
  std::mutex write_mutex_;
  bool closed_ = false;
  std::atomic<int> inflight_{0};
};

}  // namespace

Result<void> serveListener(AgentService& service, UniqueFd listener) {
  while (true) {
    int fd = retryOnEintr([&] { return ::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC); });
    if (fd < 0) {
      if (errno == ECONNABORTED || errno == EMFILE || errno == ENFILE) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        continue;
      }
      return failErrno("accept");
    }
    auto conn = std::make_shared<Connection>(service, std::make_shared<UniqueFd>(fd));
    try {
      std::thread([conn] {
        auto result = conn->serve();
        log::get("agent")->debug("connection closed: {}",
                                 result ? std::string("ok") : result.error().message());
        conn->close();
      }).detach();
    } catch (const std::system_error& e) {
      // No thread for it (the guest's task table is full): drop this client, keep serving.
      log::get("agent")->warn("connection dropped: {}", e.what());
      conn->close();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
}

Result<void> serveSerialPort(AgentService& service, const std::string& path) {
  // A virtio-serial port can be open only once: keep one fd for the agent's lifetime and
  // start a new session whenever the host (re)connects.
  auto fd = std::make_shared<UniqueFd>(::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOCTTY));
  if (!*fd) {
    return failErrno("open " + path);
  }
  while (true) {
    // Without a host side the port reports POLLHUP; wait until there is something to read.
    while (true) {
      pollfd pfd{fd->get(), POLLIN, 0};
      int rc = retryOnEintr([&] { return ::poll(&pfd, 1, 1000); });
      if (rc < 0) {
        return failErrno("poll " + path);
      }
      // A disconnected port polls as POLLIN|POLLHUP (reads return 0): wait for HUP to clear.
      if (rc > 0 && (pfd.revents & POLLIN) != 0 && (pfd.revents & POLLHUP) == 0) {
        break;
      }
      if (rc > 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
    auto conn = std::make_shared<Connection>(service, fd);
    auto result = conn->serve();
    conn->close();
    log::get("agent")->info("host channel: {}; waiting for the host to reconnect",
                            result ? std::string("closed") : result.error().message());
  }
}

}  // namespace nv::agent
