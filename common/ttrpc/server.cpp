// SPDX-License-Identifier: Apache-2.0
// ttrpc server: accept loop, per-connection request dispatch, out-of-order responses.
#include "common/ttrpc/server.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <map>
#include <mutex>
#include <unordered_map>

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <fmt/format.h>

#include "common/logging.h"
#include "common/syscall.h"
#include "common/ttrpc/channel.h"
#include "common/ttrpc/ttrpc.pb.h"

namespace nv::ttrpc {

namespace asio = boost::asio;

namespace detail {

class ServerConnection;

// Shared between a Responder (any thread) and its connection (io thread).
struct PendingCall {
  asio::io_context* io = nullptr;
  std::weak_ptr<ServerConnection> conn;
  uint32_t stream_id = 0;
  std::mutex mu;
  bool done = false;  // answered or cancelled
  bool cancelled = false;
  std::function<void()> on_cancel;

  // Claims the right to answer; false if answered or cancelled already.
  bool claim() {
    std::lock_guard lock(mu);
    return !std::exchange(done, true);
  }
  void cancel() {
    std::function<void()> fn;
    {
      std::lock_guard lock(mu);
      if (done) {
        return;
      }
      done = true;
      cancelled = true;
      fn = std::move(on_cancel);
    }
    if (fn) {
      fn();
    }
  }
};

struct Acceptor {
  asio::local::stream_protocol::acceptor acceptor;
  std::string unlink_path;  // empty: not ours to remove
};

struct ServerState : std::enable_shared_from_this<ServerState> {
  ServerState(asio::io_context& io_in, ServerOptions opts) : io(io_in), options(opts) {}

  asio::io_context& io;
  ServerOptions options;
  std::shared_ptr<spdlog::logger> log = nv::log::get("ttrpc");
  std::map<std::pair<std::string, std::string>, Handler> handlers;
  std::map<std::string, int> services;  // service name -> handler count
  std::vector<std::unique_ptr<Acceptor>> acceptors;
  std::unordered_map<uint64_t, std::shared_ptr<ServerConnection>> connections;
  std::function<void(uint64_t, const Error&)> on_closed;
  uint64_t next_id = 1;
  bool stopped = false;

  void accept(Acceptor* acc);
  Result<uint64_t> serve(UniqueFd fd);
  void connectionClosed(uint64_t id, const Error& reason);
};

class ServerConnection : public std::enable_shared_from_this<ServerConnection> {
 public:
  ServerConnection(std::weak_ptr<ServerState> server, uint64_t id,
                   std::shared_ptr<Channel> channel, ServerOptions options)
      : server_(std::move(server)), id_(id), channel_(std::move(channel)), options_(options) {}

  void start() {
    channel_->start(
        [self = shared_from_this()](tl::expected<Frame, FrameError> f) { self->onFrame(f); },
        [self = shared_from_this()](const Error& reason) { self->onClosed(reason); });
  }
  void close(const Error& reason) { channel_->close(reason); }

  // On the io thread: sends the response of `stream_id` if it is still in flight.
  void respond(uint32_t stream_id, const std::string& response_bytes) {
    if (in_flight_.erase(stream_id) == 0) {
      return;
    }
    if (auto r = channel_->send(stream_id, MessageType::kResponse, response_bytes); !r) {
      log_->warn("connection {}: dropping response of stream {}: {}", id_, stream_id,
                 r.error().message());
    }
    channel_->setPaused(in_flight_.size() >= options_.max_in_flight_per_connection);
  }

 private:
  void sendStatus(uint32_t stream_id, StatusCode code, const std::string& message) {
    ::ttrpc::Response response;
    response.mutable_status()->set_code(static_cast<int32_t>(code));
    response.mutable_status()->set_message(message);
    (void)channel_->send(stream_id, MessageType::kResponse, response.SerializeAsString());
  }

  void protocolError(uint32_t stream_id, StatusCode code, Errc errc, const std::string& what) {
    NV_LOG_RATE_LIMITED(log_, spdlog::level::warn, "connection {}: closing: {}", id_, what);
    sendStatus(stream_id, code, what);
    channel_->closeAfterFlush(Error(errc, "ttrpc: " + what));
  }

  void onFrame(const tl::expected<Frame, FrameError>& frame) {
    if (!frame) {
      const FrameError& err = frame.error();
      if (err.kind == FrameError::Kind::kOversized) {
        // ttrpc 1.1 discards the data and answers RESOURCE_EXHAUSTED; we answer the same but
        // then close instead of reading up to 4 GiB of junk from a misbehaving peer.
        protocolError(err.header.stream_id, StatusCode::kResourceExhausted, Errc::kTooLarge,
                      err.message());
      } else {
        NV_LOG_RATE_LIMITED(log_, spdlog::level::warn, "connection {}: closing: {}", id_,
                            err.message());
      }
      return;
    }
    const FrameHeader& h = frame->header;
    if (h.type != static_cast<uint8_t>(MessageType::kRequest)) {
      NV_LOG_RATE_LIMITED(log_, spdlog::level::warn,
                          "connection {}: closing: unexpected message type {}", id_, h.type);
      channel_->close(Error(Errc::kProtocol,
                            fmt::format("ttrpc: unexpected message type {} from client", h.type)));
      return;
    }
    ::ttrpc::Request request;
    if (!request.ParseFromString(frame->payload)) {
      protocolError(h.stream_id, StatusCode::kInvalidArgument, Errc::kProtocol,
                    fmt::format("unmarshal request error (stream {})", h.stream_id));
      return;
    }
    if (h.stream_id % 2 != 1) {
      sendStatus(h.stream_id, StatusCode::kInvalidArgument,
                 "StreamID must be odd for client initiated streams");
      return;
    }
    if (in_flight_.count(h.stream_id) != 0) {
      protocolError(h.stream_id, StatusCode::kInvalidArgument, Errc::kProtocol,
                    fmt::format("stream {} reused while in flight", h.stream_id));
      return;
    }
    dispatch(h.stream_id, std::move(request));
  }

  void dispatch(uint32_t stream_id, ::ttrpc::Request request) {
    auto server = server_.lock();
    if (!server) {
      channel_->close(Error(Errc::kCancelled, "ttrpc: server stopped"));
      return;
    }
    auto state = std::make_shared<PendingCall>();
    state->io = &server->io;
    state->conn = weak_from_this();
    state->stream_id = stream_id;
    in_flight_.emplace(stream_id, state);
    channel_->setPaused(in_flight_.size() >= options_.max_in_flight_per_connection);
    Responder responder(state);

    auto it = server->handlers.find({request.service(), request.method()});
    if (it == server->handlers.end()) {
      const bool known_service = server->services.count(request.service()) != 0;
      responder.fail(Status{StatusCode::kUnimplemented,
                            known_service ? "method " + request.method()
                                          : "service " + request.service()});
      return;
    }
    Call call;
    call.service = request.service();
    call.method = request.method();
    call.payload = std::move(*request.mutable_payload());
    for (const auto& kv : request.metadata()) {
      call.metadata.emplace_back(kv.key(), kv.value());
    }
    if (request.timeout_nano() != 0) {
      call.deadline = std::chrono::steady_clock::now() +
                      std::chrono::nanoseconds(std::max<int64_t>(request.timeout_nano(), 0));
    }
    call.stream_id = stream_id;
    call.connection_id = id_;
    try {
      it->second(std::move(call), std::move(responder));
    } catch (const std::exception& e) {
      log_->error("handler /{}/{} threw: {}", request.service(), request.method(), e.what());
      // The moved-from responder is gone; answer through the shared state.
      Responder(state).fail(Status{StatusCode::kInternal, "handler failed"});
    }
  }

  void onClosed(const Error& reason) {
    auto in_flight = std::move(in_flight_);
    in_flight_.clear();
    for (auto& [id, weak] : in_flight) {
      if (auto call = weak.lock()) {
        call->cancel();
      }
    }
    if (auto server = server_.lock()) {
      server->connectionClosed(id_, reason);
    }
  }

  std::weak_ptr<ServerState> server_;
  uint64_t id_;
  std::shared_ptr<Channel> channel_;
  ServerOptions options_;
  std::shared_ptr<spdlog::logger> log_ = nv::log::get("ttrpc");
  std::unordered_map<uint32_t, std::weak_ptr<PendingCall>> in_flight_;
};

Result<uint64_t> ServerState::serve(UniqueFd fd) {
  if (stopped) {
    return fail(Errc::kUnavailable, "ttrpc: server stopped");
  }
  NV_ASSIGN_OR_RETURN(auto channel,
                      Channel::create(io, std::move(fd), options.max_queued_write_bytes));
  const uint64_t id = next_id++;
  auto conn = std::make_shared<ServerConnection>(weak_from_this(), id, channel, options);
  connections.emplace(id, conn);
  conn->start();
  return id;
}

void ServerState::connectionClosed(uint64_t id, const Error& reason) {
  connections.erase(id);
  log->debug("connection {} closed: {}", id, reason.message());
  if (on_closed) {
    try {
      on_closed(id, reason);
    } catch (const std::exception& e) {
      log->error("connection-closed callback threw: {}", e.what());
    }
  }
}

void ServerState::accept(Acceptor* acc) {
  acc->acceptor.async_accept([weak = weak_from_this(), acc](const boost::system::error_code& ec,
                                                            asio::local::stream_protocol::socket
                                                                socket) {
    auto self = weak.lock();
    if (!self || self->stopped || ec == asio::error::operation_aborted) {
      return;
    }
    if (ec) {
      NV_LOG_RATE_LIMITED(self->log, spdlog::level::warn, "accept: {}", ec.message());
    } else {
      boost::system::error_code release_ec;
      UniqueFd fd(socket.release(release_ec));
      if (auto r = self->serve(std::move(fd)); !r) {
        NV_LOG_RATE_LIMITED(self->log, spdlog::level::warn, "serving accepted connection: {}",
                            r.error().message());
      }
    }
    self->accept(acc);
  });
}

}  // namespace detail

// ---- Responder ---------------------------------------------------------------------------

namespace {

void post(const std::shared_ptr<detail::PendingCall>& state, std::string response_bytes) {
  NV_ASIO_BEGIN
  asio::post(*state->io, [conn = state->conn, id = state->stream_id,
                          bytes = std::move(response_bytes)] {
    if (auto c = conn.lock()) {
      c->respond(id, bytes);
    }
  });
  NV_ASIO_END
}

}  // namespace

Responder& Responder::operator=(Responder&& other) noexcept {
  if (this != &other) {
    if (state_ && state_->claim()) {
      ::ttrpc::Response response;
      response.mutable_status()->set_code(static_cast<int32_t>(StatusCode::kInternal));
      response.mutable_status()->set_message("handler dropped the request");
      post(state_, response.SerializeAsString());
    }
    state_ = std::move(other.state_);
  }
  return *this;
}

Responder::~Responder() {
  if (state_ && state_->claim()) {
    try {
      ::ttrpc::Response response;
      response.mutable_status()->set_code(static_cast<int32_t>(StatusCode::kInternal));
      response.mutable_status()->set_message("handler dropped the request");
      post(state_, response.SerializeAsString());
    } catch (...) {  // OOM while answering a dropped call: the client times out instead.
    }
  }
}

void Responder::reply(std::string payload) {
  if (!state_ || !state_->claim()) {
    return;
  }
  // On success ttrpc sends the payload only (no status), like the Go server.
  ::ttrpc::Response response;
  response.set_payload(std::move(payload));
  std::string bytes = response.SerializeAsString();
  if (bytes.size() > kMaxMessageLength) {
    response.Clear();
    response.mutable_status()->set_code(static_cast<int32_t>(StatusCode::kResourceExhausted));
    response.mutable_status()->set_message(
        fmt::format("response of {} bytes exceeds maximum message size of {}", bytes.size(),
                    kMaxMessageLength));
    bytes = response.SerializeAsString();
  }
  post(state_, std::move(bytes));
}

void Responder::fail(Status status) {
  if (!state_ || !state_->claim()) {
    return;
  }
  ::ttrpc::Response response;
  response.mutable_status()->set_code(static_cast<int32_t>(
      status.code == StatusCode::kOk ? StatusCode::kUnknown : status.code));
  status.message.resize(std::min<size_t>(status.message.size(), 64 * 1024));
  response.mutable_status()->set_message(std::move(status.message));
  post(state_, response.SerializeAsString());
}

void Responder::finish(Result<std::string> result) {
  if (result) {
    reply(std::move(*result));
  } else {
    fail(errorToStatus(result.error()));
  }
}

void Responder::onCancel(std::function<void()> fn) {
  if (!state_) {
    return;
  }
  {
    std::lock_guard lock(state_->mu);
    if (!state_->cancelled) {
      if (!state_->done) {
        state_->on_cancel = std::move(fn);
      }
      return;
    }
  }
  fn();
}

bool Responder::cancelled() const {
  if (!state_) {
    return false;
  }
  std::lock_guard lock(state_->mu);
  return state_->cancelled;
}

// ---- Server --------------------------------------------------------------------------------

Server::Server(asio::io_context& io, ServerOptions options)
    : state_(std::make_shared<detail::ServerState>(io, options)) {}

Server::~Server() { stop(); }

void Server::registerHandler(const std::string& service, const std::string& method,
                             Handler handler) {
  if (state_->handlers.insert_or_assign({service, method}, std::move(handler)).second) {
    ++state_->services[service];
  }
}

Result<void> Server::listen(const std::string& path, mode_t mode) {
  if (state_->stopped) {
    return fail(Errc::kUnavailable, "ttrpc: server stopped");
  }
  if (path.empty() || path.size() >= sizeof(sockaddr_un::sun_path)) {
    return fail(Errc::kInvalidArgument, "ttrpc: socket path '" + path + "' is empty or too long");
  }
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return fail(Errc::kAlreadyExists, "ttrpc: " + path + " exists and is not a socket");
    }
    // A live server answers connect(); a stale socket file (crashed owner) is removed.
    UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path.copy(addr.sun_path, path.size());
    if (probe && retryOnEintr([&] {
          return ::connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
        }) == 0) {
      return fail(Errc::kAlreadyExists, "ttrpc: socket " + path + " is in use by a live server");
    }
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      return failErrno("ttrpc: removing stale socket " + path);
    }
  }
  auto acc = std::make_unique<detail::Acceptor>(
      detail::Acceptor{asio::local::stream_protocol::acceptor(state_->io), ""});
  boost::system::error_code ec;
  const asio::local::stream_protocol::endpoint endpoint(path);
  acc->acceptor.open(endpoint.protocol(), ec);
  if (!ec) {
    acc->acceptor.bind(endpoint, ec);
  }
  if (ec) {
    return fail(Errc::kUnavailable, "ttrpc: bind " + path + ": " + ec.message());
  }
  acc->unlink_path = path;
  // No client can connect before listen(), so setting the mode here leaves no window.
  if (::chmod(path.c_str(), mode) != 0) {
    const int err = errno;
    ::unlink(path.c_str());
    return failErrno(err, "ttrpc: chmod " + path);
  }
  acc->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    ::unlink(path.c_str());
    return fail(Errc::kUnavailable, "ttrpc: listen " + path + ": " + ec.message());
  }
  state_->acceptors.push_back(std::move(acc));
  state_->accept(state_->acceptors.back().get());
  return {};
}

Result<void> Server::serveListener(UniqueFd listening_fd) {
  if (state_->stopped) {
    return fail(Errc::kUnavailable, "ttrpc: server stopped");
  }
  auto acc = std::make_unique<detail::Acceptor>(
      detail::Acceptor{asio::local::stream_protocol::acceptor(state_->io), ""});
  boost::system::error_code ec;
  acc->acceptor.assign(asio::local::stream_protocol(), listening_fd.get(), ec);
  if (ec) {
    return fail(Errc::kInvalidArgument, "ttrpc: cannot accept on fd: " + ec.message());
  }
  (void)listening_fd.release();
  state_->acceptors.push_back(std::move(acc));
  state_->accept(state_->acceptors.back().get());
  return {};
}

Result<uint64_t> Server::serveFd(UniqueFd connected_fd) {
  return state_->serve(std::move(connected_fd));
}

void Server::setConnectionClosedHandler(std::function<void(uint64_t, const Error&)> fn) {
  state_->on_closed = std::move(fn);
}

void Server::stop() {
  if (state_->stopped) {
    return;
  }
  state_->stopped = true;
  for (auto& acc : state_->acceptors) {
    boost::system::error_code ignored;
    acc->acceptor.close(ignored);
    if (!acc->unlink_path.empty()) {
      ::unlink(acc->unlink_path.c_str());
    }
  }
  auto connections = state_->connections;  // close() erases from the map
  for (auto& [id, conn] : connections) {
    conn->close(Error(Errc::kCancelled, "ttrpc: server stopped"));
  }
}

size_t Server::connectionCount() const { return state_->connections.size(); }

}  // namespace nv::ttrpc
