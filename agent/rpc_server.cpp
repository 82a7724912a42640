// SPDX-License-Identifier: Apache-2.0
// ttrpc transport for AgentService.
//
// ttrpc primer (github.com/containerd/ttrpc, PROTOCOL.md): every message is a 10-byte header
// (uint32 BE payload length, uint32 BE stream id, uint8 type, uint8 flags) and a protobuf
// payload. Type 1 = Request {1 service, 2 method, 3 payload, 4 timeout_nano, 5 metadata},
// type 2 = Response {1 status {1 code, 2 message}, 2 payload}; the response reuses the
// request's stream id. Clients use odd stream ids. Payloads are at most 4 MiB.
//
// This is a small server of the agent's own (requests in parallel, each on its own thread,
// responses serialized by a write lock) until the shared common/ttrpc server is adopted.
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
#include <thread>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include "common/logging.h"
#include "common/syscall.h"

namespace nv::agent {
namespace {

constexpr uint32_t kMaxMessageBytes = 4 * 1024 * 1024;
constexpr uint8_t kTypeRequest = 1;
constexpr uint8_t kTypeResponse = 2;
constexpr int kMaxInflight = 256;

using Request = TtrpcRequest;

bool parseRequest(const std::string& bytes, Request& out) {
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                                            static_cast<int>(bytes.size()));
  while (true) {
    uint32_t tag = in.ReadTag();
    if (tag == 0) {
      return in.ConsumedEntireMessage() || in.BytesUntilLimit() <= 0;
    }
    uint32_t field = tag >> 3;
    uint32_t wire = tag & 7;
    std::string* target = nullptr;
    if (field == 1) target = &out.service;
    if (field == 2) target = &out.method;
    if (field == 3) target = &out.payload;
    if (target != nullptr && wire == 2) {
      uint32_t len = 0;
      if (!in.ReadVarint32(&len) || !in.ReadString(target, static_cast<int>(len))) {
        return false;
      }
    } else if (!google::protobuf::internal::WireFormatLite::SkipField(&in, tag)) {
      return false;
    }
  }
}

std::string encodeResponse(int code, const std::string& message, const std::string& payload) {
  std::string status;
  {
    google::protobuf::io::StringOutputStream stream(&status);
    google::protobuf::io::CodedOutputStream out(&stream);
    if (code != 0) {
      out.WriteTag((1 << 3) | 0);
      out.WriteVarint32(static_cast<uint32_t>(code));
    }
    if (!message.empty()) {
      out.WriteTag((2 << 3) | 2);
      out.WriteVarint32(static_cast<uint32_t>(message.size()));
      out.WriteString(message);
    }
  }
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream out(&stream);
    out.WriteTag((1 << 3) | 2);
    out.WriteVarint32(static_cast<uint32_t>(status.size()));
    out.WriteString(status);
    if (!payload.empty()) {
      out.WriteTag((2 << 3) | 2);
      out.WriteVarint32(static_cast<uint32_t>(payload.size()));
      out.WriteString(payload);
    }
  }
  return bytes;
}

// A method handler: request payload -> (status code, message, response payload).
struct Reply {
  int code = 0;
  std::string message;
  std::string payload;
};
using Handler = std::function<Reply(AgentService&, const std::string&)>;

template <class Req, class Resp>
Handler bind(Result<Resp> (AgentService::*method)(const Req&)) {
  return [method](AgentService& service, const std::string& payload) {
    Req req;
    if (!req.ParseFromString(payload)) {
      return Reply{3, "request does not parse as " + req.GetTypeName(), {}};
    }
    Result<Resp> resp = (service.*method)(req);
    if (!resp) {
      return Reply{statusCodeFor(resp.error()), resp.error().message(), {}};
    }
    return Reply{0, {}, resp->SerializeAsString()};
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
      uint8_t header[10];
      NV_TRY(readFull(header, sizeof(header)));
      uint32_t length = (uint32_t{header[0]} << 24) | (uint32_t{header[1]} << 16) |
                        (uint32_t{header[2]} << 8) | header[3];
      uint32_t stream = (uint32_t{header[4]} << 24) | (uint32_t{header[5]} << 16) |
                        (uint32_t{header[6]} << 8) | header[7];
      uint8_t type = header[8];
      if (length > kMaxMessageBytes) {
        return fail(Errc::kProtocol, "ttrpc message of " + std::to_string(length) + " bytes");
      }
      std::string payload(length, '\0');
      NV_TRY(readFull(reinterpret_cast<uint8_t*>(payload.data()), length));
      if (type != kTypeRequest) {
        NV_LOG_RATE_LIMITED(log::get("agent"), spdlog::level::warn,
                            "ignoring ttrpc message type {}", type);
        continue;
      }
      dispatch(stream, std::move(payload));
    }
  }

 private:
  Result<void> readFull(uint8_t* data, size_t size) {
    while (size > 0) {
      ssize_t n = retryOnEintr([&] { return ::read(fd_, data, size); });
      if (n < 0) {
        return failErrno("read ttrpc");
      }
      if (n == 0) {
        return fail(Errc::kUnavailable, "host closed the connection");
      }
      data += n;
      size -= static_cast<size_t>(n);
    }
    return {};
  }

  void dispatch(uint32_t stream, std::string payload) {
    Request req;
    if (!parseRequest(payload, req)) {
      send(stream, Reply{3, "malformed ttrpc request", {}});
      return;
    }
    auto it = handlers().find(req.method);
    if (req.service != kServiceName || it == handlers().end()) {
      send(stream, Reply{12, "unknown method " + req.service + "/" + req.method, {}});
      return;
    }
    if (inflight_.fetch_add(1) >= kMaxInflight) {
      inflight_.fetch_sub(1);
      send(stream, Reply{8, "too many requests in flight", {}});
      return;
    }
    auto self = shared_from_this();
    const Handler& handler = it->second;
    std::thread([self, stream, &handler, body = std::move(req.payload)] {
      Reply reply;
      try {
        reply = handler(self->service_, body);
      } catch (const std::exception& e) {
        reply = Reply{13, std::string("internal error: ") + e.what(), {}};
      }
      self->send(stream, reply);
      self->inflight_.fetch_sub(1);
    }).detach();
  }

  void send(uint32_t stream, const Reply& reply) {
    std::string body = encodeResponse(reply.code, reply.message, reply.payload);
    if (body.size() > kMaxMessageBytes) {
      body = encodeResponse(8, "response larger than 4 MiB", {});
    }
    std::string frame(10, '\0');
    uint32_t len = static_cast<uint32_t>(body.size());
    for (int i = 0; i < 4; ++i) {
      frame[static_cast<size_t>(i)] = static_cast<char>((len >> (24 - 8 * i)) & 0xff);
      frame[static_cast<size_t>(4 + i)] = static_cast<char>((stream >> (24 - 8 * i)) & 0xff);
    }
    frame[8] = static_cast<char>(kTypeResponse);
    frame += body;
    std::lock_guard l(write_mutex_);
    if (closed_) {
      return;
    }
    const char* p = frame.data();
    size_t left = frame.size();
    while (left > 0) {
      ssize_t n = retryOnEintr([&] { return ::write(fd_, p, left); });
      if (n <= 0) {
        return;  // the host went away; it will not read this response
      }
      p += n;
      left -= static_cast<size_t>(n);
    }
  }

  AgentService& service_;
  const int fd_;
  std::shared_ptr<UniqueFd> owned_fd_;  // shared: handler threads keep it open
  std::mutex write_mutex_;
  bool closed_ = false;
  std::atomic<int> inflight_{0};
};

}  // namespace

bool decodeTtrpcRequest(const std::string& bytes, TtrpcRequest& out) {
  return parseRequest(bytes, out);
}

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
    std::thread([conn] {
      auto result = conn->serve();
      log::get("agent")->debug("connection closed: {}",
                               result ? std::string("ok") : result.error().message());
      conn->close();
    }).detach();
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
