// SPDX-License-Identifier: Apache-2.0
// Channel: framing and a bounded write queue over one connected stream fd.
#include "common/ttrpc/channel.h"

#include <sys/socket.h>
#include <sys/stat.h>

#include <boost/asio/write.hpp>

namespace nv::ttrpc::detail {

namespace asio = boost::asio;

namespace {
constexpr size_t kReadChunk = 64 * 1024;
constexpr auto kLinger = std::chrono::seconds(1);
}  // namespace

Channel::Channel(asio::io_context& io, size_t max_queued_write_bytes)
    : io_(io), linger_(io), max_queued_write_bytes_(max_queued_write_bytes), read_buf_(kReadChunk) {}

Result<std::shared_ptr<Channel>> Channel::create(asio::io_context& io, UniqueFd fd,
                                                 size_t max_queued_write_bytes) {
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    return failErrno("ttrpc: fstat of connection fd");
  }
  auto channel = std::make_shared<Channel>(io, max_queued_write_bytes);
  boost::system::error_code ec;
  if (S_ISSOCK(st.st_mode)) {
    int domain = 0;
    int protocol = 0;
    socklen_t len = sizeof(domain);
    if (::getsockopt(fd.get(), SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0) {
      return failErrno("ttrpc: getsockopt SO_DOMAIN");
    }
    len = sizeof(protocol);
    if (::getsockopt(fd.get(), SOL_SOCKET, SO_PROTOCOL, &protocol, &len) != 0) {
      return failErrno("ttrpc: getsockopt SO_PROTOCOL");
    }
    channel->socket_.emplace(io);
    channel->socket_->assign(asio::generic::stream_protocol(domain, protocol), fd.get(), ec);
  } else {
    channel->descriptor_.emplace(io);
    channel->descriptor_->assign(fd.get(), ec);
  }
  if (ec) {
    return fail(Errc::kInvalidArgument, "ttrpc: cannot serve fd: " + ec.message());
  }
  (void)fd.release();  // now owned by the Asio object
  return channel;
}

void Channel::start(FrameHandler on_frame, CloseHandler on_close) {
  on_frame_ = std::move(on_frame);
  on_close_ = std::move(on_close);
  started_ = true;
  pump();
}

Result<void> Channel::send(uint32_t stream_id, MessageType type, std::string_view payload) {
  if (closed_ || closing_reason_) {
    return fail(Errc::kUnavailable, "ttrpc: connection closed");
  }
  NV_ASSIGN_OR_RETURN(std::string frame, encodeFrame(stream_id, type, payload));
  queued_bytes_ += frame.size();
  writes_.push_back(std::move(frame));
  if (!writing_) {
    doWrite();
  }
  return {};
}

void Channel::setPaused(bool paused) {
  if (paused_ == paused) {
    return;
  }
  paused_ = paused;
  if (!paused_ && started_) {
    // Deliver from a fresh stack frame: the caller may be inside on_frame_.
    postTo(io_, [self = shared_from_this()] { self->pump(); });
  }
}

void Channel::pump() {
  while (!closed_ && !closing_reason_ && !paused_) {
    auto next = decoder_.next();
    if (!next) {
      const FrameError err = next.error();
      if (on_frame_) {
        on_frame_(tl::unexpected(err));
      }
      if (!closed_ && !closing_reason_) {
        close(Error(Errc::kProtocol, "ttrpc: " + err.message()));
      }
      return;
    }
    if (!next->has_value()) {
      break;
    }
    if (on_frame_) {
      on_frame_(std::move(**next));
    }
  }
  if (closed_ || closing_reason_) {
    return;
  }
  if (eof_) {
    finishEof();
    return;
  }
  if (!paused_ && !reading_ && queued_bytes_ <= max_queued_write_bytes_) {
    doRead();
  }
}

void Channel::finishEof() {
  if (!paused_) {
    if (auto err = decoder_.finish()) {
      if (on_frame_) {
        on_frame_(tl::unexpected(*err));
      }
      close(Error(Errc::kProtocol, "ttrpc: " + err->message()));
      return;
    }
  }
  close(Error(Errc::kUnavailable, "ttrpc: peer closed the connection"));
}

void Channel::doRead() {
  reading_ = true;
  withStream([this](auto& stream) {
    stream.async_read_some(
        asio::buffer(read_buf_),
        [self = shared_from_this()](const boost::system::error_code& ec, size_t n) {
          self->reading_ = false;
          if (self->closed_) {
            return;
          }
          if (n > 0) {
            self->decoder_.feed(std::span<const uint8_t>(self->read_buf_.data(), n));
          }
          if (ec == asio::error::eof) {
            self->eof_ = true;
          } else if (ec) {
            self->close(Error(Errc::kUnavailable, "ttrpc: read: " + ec.message()));
            return;
          }
          self->pump();
        });
  });
}

void Channel::doWrite() {
  if (writes_.empty() || closed_) {
    writing_ = false;
    if (closing_reason_ && !closed_) {
      close(*closing_reason_);
    }
    return;
  }
  writing_ = true;
  withStream([this](auto& stream) {
    NV_ASIO_BEGIN
    asio::async_write(
        stream, asio::buffer(writes_.front()),
        [self = shared_from_this()](const boost::system::error_code& ec, size_t /*n*/) {
          if (self->closed_) {
            return;
          }
          if (ec) {
            self->close(Error(Errc::kUnavailable, "ttrpc: write: " + ec.message()));
            return;
          }
          const bool was_over = self->queued_bytes_ > self->max_queued_write_bytes_;
          self->queued_bytes_ -= self->writes_.front().size();
          self->writes_.pop_front();
          self->doWrite();
          if (was_over && self->queued_bytes_ <= self->max_queued_write_bytes_) {
            self->pump();
          }
        });
    NV_ASIO_END
  });
}

void Channel::closeAfterFlush(const Error& reason) {
  if (closed_ || closing_reason_) {
    return;
  }
  closing_reason_ = reason;
  if (!writing_) {
    close(reason);
    return;
  }
  linger_.expires_after(kLinger);
  linger_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    if (!ec && self->closing_reason_) {
      self->close(*self->closing_reason_);
    }
  });
}

void Channel::close(const Error& reason) {
  if (closed_) {
    return;
  }
  closed_ = true;
  boost::system::error_code ignored;
  linger_.cancel();
  if (socket_) {
    socket_->shutdown(asio::socket_base::shutdown_both, ignored);
    socket_->close(ignored);
  } else {
    descriptor_->close(ignored);
  }
  writes_.clear();
  queued_bytes_ = 0;
  auto on_close = std::move(on_close_);
  on_close_ = nullptr;
  if (on_close) {
    on_close(reason);
  }
  // close() may run inside on_frame_, whose captures can hold the last reference to the owner:
  // destroy the handlers later, from a fresh stack frame.
  postTo(io_,
         [dead_frame = std::move(on_frame_), dead_close = std::move(on_close)] {});
  on_frame_ = nullptr;
}

}  // namespace nv::ttrpc::detail
