// SPDX-License-Identifier: Apache-2.0
// Channel (internal): one connected ttrpc byte stream on Asio, framing + bounded write queue.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "common/result.h"
#include "common/ttrpc/frame.h"
#include "common/unique_fd.h"

// GCC 12 reports Asio's `enable_if<...>::type* = 0` default arguments at our call sites
// (-Wzero-as-null-pointer-constant); these bracket such calls so the check stays on elsewhere.
#define NV_ASIO_BEGIN \
  _Pragma("GCC diagnostic push") \
  _Pragma("GCC diagnostic ignored \"-Wzero-as-null-pointer-constant\"")
#define NV_ASIO_END _Pragma("GCC diagnostic pop")

namespace nv::ttrpc::detail {

// asio::post without the warning noise above.
template <class F>
void postTo(boost::asio::io_context& io, F&& fn) {
  NV_ASIO_BEGIN
  boost::asio::post(io, std::forward<F>(fn));
  NV_ASIO_END
}

// Owns a connected fd: a socket (Unix, vsock; written with MSG_NOSIGNAL) or any pollable stream
// such as a virtio-serial character device. Delivers decoded frames to its owner and queues
// outgoing frames. Reading stops (back-pressure) while the owner paused it or while more than
// `max_queued_write_bytes` wait to be written. All methods run on the io_context's thread.
class Channel : public std::enable_shared_from_this<Channel> {
 public:
  // A frame, or the reason the byte stream is not valid ttrpc (the channel then closes).
  using FrameHandler = std::function<void(tl::expected<Frame, FrameError>)>;
  using CloseHandler = std::function<void(const Error&)>;

  static Result<std::shared_ptr<Channel>> create(boost::asio::io_context& io, UniqueFd fd,
                                                 size_t max_queued_write_bytes);

  // Starts reading. Both handlers are dropped after on_close ran (breaks owner cycles).
  void start(FrameHandler on_frame, CloseHandler on_close);
  // Queues one frame. kTooLarge for an oversized payload, kUnavailable once closed.
  Result<void> send(uint32_t stream_id, MessageType type, std::string_view payload);
  // The owner's back-pressure (e.g. in-flight cap reached): no frames delivered while paused.
  void setPaused(bool paused);
  // Closes now; on_close runs once with `reason`. Idempotent.
  void close(const Error& reason);
  // Stops reading, flushes queued frames (for at most one second), then closes.
  void closeAfterFlush(const Error& reason);
  [[nodiscard]] bool closed() const { return closed_; }

  Channel(boost::asio::io_context& io, size_t max_queued_write_bytes);

 private:
  template <class F>
  void withStream(F&& f) {
    if (socket_) {
      f(*socket_);
    } else {
      f(*descriptor_);
    }
  }
  void pump();
  void finishEof();
  void doRead();
  void doWrite();

  boost::asio::io_context& io_;
  std::optional<boost::asio::generic::stream_protocol::socket> socket_;
  std::optional<boost::asio::posix::stream_descriptor> descriptor_;
  boost::asio::steady_timer linger_;
  size_t max_queued_write_bytes_;
  FrameDecoder decoder_;
  std::vector<uint8_t> read_buf_;
  std::deque<std::string> writes_;
  size_t queued_bytes_ = 0;
  FrameHandler on_frame_;
  CloseHandler on_close_;
  std::optional<Error> closing_reason_;  // set by closeAfterFlush
  bool started_ = false;
  bool reading_ = false;
  bool writing_ = false;
  bool paused_ = false;
  bool eof_ = false;
  bool closed_ = false;
};

}  // namespace nv::ttrpc::detail
