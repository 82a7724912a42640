// SPDX-License-Identifier: Apache-2.0
// ttrpc client: odd stream ids, pending-call table, per-call deadline timers.
#include "common/ttrpc/client.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <future>
#include <unordered_map>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fmt/format.h>

#include "common/logging.h"
#include "common/syscall.h"
#include "common/ttrpc/channel.h"
#include "common/ttrpc/ttrpc.pb.h"

namespace nv::ttrpc {

namespace asio = boost::asio;

namespace detail {

struct ClientState : std::enable_shared_from_this<ClientState> {
  struct Pending {
    std::string method;  // for messages
    CallCallback done;
    std::unique_ptr<asio::steady_timer> timer;
  };

  ClientState(asio::io_context& io_in, std::shared_ptr<Channel> ch)
      : io(io_in), channel(std::move(ch)) {}

  asio::io_context& io;
  std::shared_ptr<Channel> channel;
  std::shared_ptr<spdlog::logger> log = nv::log::get("ttrpc");
  std::unordered_map<uint32_t, Pending> pending;
  uint32_t next_stream_id = 1;  // client-initiated ids are odd
  std::optional<Error> closed;
  std::function<void(const Error&)> on_closed;

  void start() {
    // Weak: the channel must not keep its owner alive. A strong cycle leaked both when the
    // io thread stopped before a posted close() ran; the Client (and any posted work) holds
    // the state while it matters.
    channel->start(
        [weak = weak_from_this()](tl::expected<Frame, FrameError> f) {
          if (auto self = weak.lock()) self->onFrame(f);
        },
        [weak = weak_from_this()](const Error& reason) {
          if (auto self = weak.lock()) self->onClose(reason);
        });
  }

  static void complete(CallCallback& done, Result<std::string> result) {
    try {
      done(std::move(result));
    } catch (const std::exception& e) {
      nv::log::get("ttrpc")->error("call completion threw: {}", e.what());
    }
  }

  void startCall(std::string service, std::string method, std::string payload,
                 std::chrono::nanoseconds timeout, Metadata metadata, CallCallback done) {
    if (closed) {
      complete(done, tl::unexpected(Error(Errc::kUnavailable, closed->context())));
      return;
    }
    if (next_stream_id > 0xfffffffdu) {
      complete(done, fail(Errc::kUnavailable, "ttrpc: stream ids exhausted on this connection"));
      return;
    }
    const uint32_t id = next_stream_id;
    next_stream_id += 2;
    ::ttrpc::Request request;
    request.set_service(std::move(service));
    request.set_method(method);
    request.set_payload(std::move(payload));
    request.set_timeout_nano(timeout.count() > 0 ? timeout.count() : 0);
    for (auto& [key, value] : metadata) {
      auto* kv = request.add_metadata();
      kv->set_key(std::move(key));
      kv->set_value(std::move(value));
    }
    if (auto sent = channel->send(id, MessageType::kRequest, request.SerializeAsString()); !sent) {
      complete(done, tl::unexpected(sent.error().wrap("ttrpc call " + method)));
      return;
    }
    Pending entry{method, std::move(done), nullptr};
    if (timeout.count() > 0) {
      entry.timer = std::make_unique<asio::steady_timer>(io, timeout);
      entry.timer->async_wait(
          [weak = weak_from_this(), id, timeout](const boost::system::error_code& ec) {
            auto self = weak.lock();
            if (ec || !self) {
              return;
            }
            auto it = self->pending.find(id);
            if (it == self->pending.end()) {
              return;
            }
            Pending p = std::move(it->second);
            self->pending.erase(it);
            complete(p.done, fail(Errc::kTimeout,
                                  fmt::format("ttrpc call {}: deadline of {} ms exceeded",
                                              p.method, timeout.count() / 1000000)));
          });
    }
    pending.emplace(id, std::move(entry));
  }

  void onFrame(const tl::expected<Frame, FrameError>& frame) {
    if (!frame) {
      log->warn("closing connection: {}", frame.error().message());
      return;  // the channel closes itself
    }
    if (frame->header.type != static_cast<uint8_t>(MessageType::kResponse)) {
      channel->close(Error(Errc::kProtocol, fmt::format("ttrpc: unexpected message type {} "
                                                        "from server",
                                                        frame->header.type)));
      return;
    }
    auto it = pending.find(frame->header.stream_id);
    if (it == pending.end()) {
      log->debug("dropping response for unknown or expired stream {}", frame->header.stream_id);
      return;
    }
    Pending p = std::move(it->second);
    pending.erase(it);
    if (p.timer) {
      p.timer->cancel();
    }
    ::ttrpc::Response response;
    if (!response.ParseFromString(frame->payload)) {
      complete(p.done, fail(Errc::kProtocol, "ttrpc call " + p.method + ": undecodable response"));
      return;
    }
    if (response.has_status() && response.status().code() != 0) {
      complete(p.done, tl::unexpected(statusToError(response.status().code(),
                                                    response.status().message())));
      return;
    }
    complete(p.done, std::move(*response.mutable_payload()));
  }

  void onClose(const Error& reason) {
    closed = Error(Errc::kUnavailable, "ttrpc connection closed: " + reason.message());
    auto calls = std::move(pending);
    pending.clear();
    for (auto& [id, p] : calls) {
      if (p.timer) {
        p.timer->cancel();
      }
      complete(p.done, tl::unexpected(*closed));
    }
    if (on_closed) {
      auto fn = std::move(on_closed);
      try {
        fn(reason);
      } catch (const std::exception& e) {
        log->error("closed callback threw: {}", e.what());
      }
    }
  }
};

}  // namespace detail

Result<Client> Client::fromFd(asio::io_context& io, UniqueFd fd, ClientOptions options) {
  NV_ASSIGN_OR_RETURN(auto channel,
                      detail::Channel::create(io, std::move(fd), options.max_queued_write_bytes));
  auto state = std::make_shared<detail::ClientState>(io, std::move(channel));
  detail::postTo(io, [state] { state->start(); });
  return Client(std::move(state));
}

Result<Client> Client::connect(asio::io_context& io, const std::string& path,
                               ClientOptions options) {
  sockaddr_un addr{};
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return fail(Errc::kInvalidArgument, "ttrpc: socket path '" + path + "' is empty or too long");
  }
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) {
    return failErrno("ttrpc: socket");
  }
  addr.sun_family = AF_UNIX;
  path.copy(addr.sun_path, path.size());
  if (retryOnEintr([&] {
        return ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
      }) != 0) {
    return failErrno("ttrpc: connect " + path);
  }
  return fromFd(io, std::move(fd), options);
}

Client::~Client() { close(); }

void Client::call(std::string service, std::string method, std::string payload,
                  std::chrono::nanoseconds timeout, Metadata metadata, CallCallback done) {
  if (!state_) {  // moved-from
    detail::ClientState::complete(done, fail(Errc::kUnavailable, "ttrpc: client moved away"));
    return;
  }
  detail::postTo(state_->io, [state = state_, service = std::move(service),
                          method = std::move(method), payload = std::move(payload), timeout,
                          metadata = std::move(metadata), done = std::move(done)]() mutable {
    state->startCall(std::move(service), std::move(method), std::move(payload), timeout,
                     std::move(metadata), std::move(done));
  });
}

Result<std::string> Client::callSync(std::string service, std::string method,
                                     std::string payload, std::chrono::nanoseconds timeout,
                                     Metadata metadata) {
  if (state_ && state_->io.get_executor().running_in_this_thread()) {
    return fail(Errc::kInternal, "ttrpc: callSync on the io thread would deadlock");
  }
  auto promise = std::make_shared<std::promise<Result<std::string>>>();
  auto future = promise->get_future();
  call(std::move(service), std::move(method), std::move(payload), timeout, std::move(metadata),
       [promise](Result<std::string> result) { promise->set_value(std::move(result)); });
  return future.get();
}

void Client::setClosedHandler(std::function<void(const Error&)> fn) {
  if (!state_) {
    return;
  }
  detail::postTo(state_->io, [state = state_, fn = std::move(fn)]() mutable {
    if (state->closed) {
      fn(*state->closed);
    } else {
      state->on_closed = std::move(fn);
    }
  });
}

void Client::close() {
  if (!state_) {
    return;
  }
  detail::postTo(state_->io, [state = state_] {
    state->channel->close(Error(Errc::kCancelled, "ttrpc: client closed"));
  });
}

IoThread::IoThread()
    : work_(io_.get_executor()), thread_([this] {
        try {
          io_.run();
        } catch (const std::exception& e) {
          nv::log::get("ttrpc")->critical("io thread: uncaught exception: {}", e.what());
          std::terminate();
        }
      }) {}

IoThread::~IoThread() {
  work_.reset();
  io_.stop();
  thread_.join();
}

}  // namespace nv::ttrpc
