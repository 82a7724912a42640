// SPDX-License-Identifier: Apache-2.0
// ttrpc client: many concurrent calls on one connection, deadlines, typed helpers.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "common/result.h"
#include "common/ttrpc/server.h"  // Metadata
#include "common/ttrpc/status.h"
#include "common/unique_fd.h"

namespace nv::ttrpc {

namespace detail {
struct ClientState;
}  // namespace detail

// A completed call: the response payload, or an error (statusToError() for a remote status,
// kTimeout for an expired deadline, kUnavailable for a lost connection).
using CallCallback = std::function<void(Result<std::string>)>;

struct ClientOptions {
  size_t max_queued_write_bytes = 16u << 20;
};

// Threading: the Client works on an io_context that some thread runs (e.g. an IoThread).
// call() and close() may be called from any thread; callbacks run on the io thread.
// callSync()/callTyped() block the caller and must NOT be called on the io thread (they return
// kInternal there instead of deadlocking). Destroy the Client before its io_context.
class Client {
 public:
  // Connects to a Unix socket (blocking connect(); quick for local sockets).
  [[nodiscard]] static Result<Client> connect(boost::asio::io_context& io,
                                              const std::string& path, ClientOptions options = {});
  // Wraps a connected stream fd (socket, vsock, virtio-serial port).
  [[nodiscard]] static Result<Client> fromFd(boost::asio::io_context& io, UniqueFd fd,
                                             ClientOptions options = {});

  Client(Client&&) noexcept = default;
  Client& operator=(Client&&) noexcept = default;
  ~Client();  // close()

  // Starts `/service/method`. timeout 0 = none; otherwise it is sent as timeout_nano and the
  // call fails with kTimeout when it passes (a late response is dropped).
  void call(std::string service, std::string method, std::string payload,
            std::chrono::nanoseconds timeout, Metadata metadata, CallCallback done);

  // Blocking call() for threads other than the io thread.
  [[nodiscard]] Result<std::string> callSync(std::string service, std::string method,
                                             std::string payload,
                                             std::chrono::nanoseconds timeout,
                                             Metadata metadata = {});

  // Blocking call with protobuf (MessageLite) request and response types.
  template <class Resp, class Req>
  [[nodiscard]] Result<Resp> callTyped(std::string service, std::string method, const Req& req,
                                       std::chrono::nanoseconds timeout, Metadata metadata = {}) {
    std::string bytes;
    if (!req.SerializeToString(&bytes)) {
      return fail(Errc::kInvalidArgument, "ttrpc: cannot serialize request for " + method);
    }
    NV_ASSIGN_OR_RETURN(std::string out, callSync(std::move(service), method, std::move(bytes),
                                                  timeout, std::move(metadata)));
    Resp resp;
    if (!resp.ParseFromString(out)) {
      return fail(Errc::kProtocol, "ttrpc: cannot parse response of " + method);
    }
    return resp;
  }

  // Runs `fn` (on the io thread) once when the connection closes, with the reason.
  void setClosedHandler(std::function<void(const Error&)> fn);

  // Closes the connection; pending calls fail with kUnavailable. Idempotent.
  void close();

 private:
  explicit Client(std::shared_ptr<detail::ClientState> state) : state_(std::move(state)) {}
  std::shared_ptr<detail::ClientState> state_;
};

// An io_context run by its own thread, for callers without an event loop (CLI, tests).
class IoThread {
 public:
  IoThread();
  ~IoThread();  // stops the loop and joins
  IoThread(const IoThread&) = delete;
  IoThread& operator=(const IoThread&) = delete;
  boost::asio::io_context& context() { return io_; }

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::thread thread_;
};

}  // namespace nv::ttrpc
