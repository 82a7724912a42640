// SPDX-License-Identifier: Apache-2.0
// ttrpc server on an Asio io_context: Unix-socket listener or already-connected fds.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "common/result.h"
#include "common/ttrpc/status.h"
#include "common/unique_fd.h"

namespace nv::ttrpc {

using Metadata = std::vector<std::pair<std::string, std::string>>;

namespace detail {
struct PendingCall;
struct ServerState;
}  // namespace detail

// One request as a handler sees it.
struct Call {
  std::string service;
  std::string method;
  std::string payload;  // serialized request message
  Metadata metadata;
  // From timeout_nano; nullopt when the client sent none. Informational: the server never
  // answers on its own at the deadline (ttrpc 1.1 behaviour); the client gives up by itself.
  std::optional<std::chrono::steady_clock::time_point> deadline;
  uint32_t stream_id = 0;
  uint64_t connection_id = 0;
};

// Answers one call, once. Move-only; may be moved to and used from any thread (the answer is
// posted to the server's io_context). Dropping it unanswered answers INTERNAL.
class Responder {
 public:
  explicit Responder(std::shared_ptr<detail::PendingCall> state) : state_(std::move(state)) {}
  Responder(Responder&&) noexcept = default;
  Responder& operator=(Responder&&) noexcept;
  Responder(const Responder&) = delete;
  Responder& operator=(const Responder&) = delete;
  ~Responder();

  // OK with `payload` (the serialized response message).
  void reply(std::string payload);
  // A non-OK status (code must not be kOk).
  void fail(Status status);
  // reply() for a value, fail(errorToStatus(e)) for an error.
  void finish(Result<std::string> result);
  // `fn` runs (on the io thread) if the call is cancelled before being answered: connection
  // closed or server stopped. Runs immediately on this thread if already cancelled.
  void onCancel(std::function<void()> fn);
  [[nodiscard]] bool cancelled() const;

 private:
  std::shared_ptr<detail::PendingCall> state_;
};

// A handler runs on the io thread and must not block; it answers via the Responder, now or
// later (e.g. Wait answers when the process exits).
using Handler = std::function<void(Call call, Responder responder)>;

struct ServerOptions {
  // Requests per connection being handled at once; beyond it the server stops reading.
  size_t max_in_flight_per_connection = 128;
  // Response bytes queued per connection beyond which the server stops reading.
  size_t max_queued_write_bytes = 16u << 20;
};

// Threading: every method runs on the io_context's thread (or before it runs); the io_context
// must be run by one thread. Only Responder is thread-safe. Destroy the Server before its
// io_context.
class Server {
 public:
  explicit Server(boost::asio::io_context& io, ServerOptions options = {});
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Registers the handler of `/service/method`, replacing an earlier one.
  void registerHandler(const std::string& service, const std::string& method, Handler handler);

  // Listens on a Unix socket at `path` with permissions `mode`. A stale socket file (nobody
  // accepting) is removed; a live one or a non-socket file is an error. stop() unlinks it.
  [[nodiscard]] Result<void> listen(const std::string& path, mode_t mode = 0600);
  // Accepts on an already listening socket (e.g. fd 3 handed over by the shim's `start`).
  [[nodiscard]] Result<void> serveListener(UniqueFd listening_fd);
  // Serves one connected stream: socket (Unix, vsock, socketpair) or character device
  // (virtio-serial port). Returns the connection id.
  [[nodiscard]] Result<uint64_t> serveFd(UniqueFd connected_fd);

  // Called on the io thread when a connection closes, with the reason (kUnavailable: the peer
  // hung up; kProtocol/kTooLarge: it broke the protocol; kCancelled: stop()).
  void setConnectionClosedHandler(std::function<void(uint64_t id, const Error& reason)> fn);

  // Stops accepting, closes every connection and cancels pending calls. Idempotent.
  void stop();

  [[nodiscard]] size_t connectionCount() const;

 private:
  std::shared_ptr<detail::ServerState> state_;
};

}  // namespace nv::ttrpc
