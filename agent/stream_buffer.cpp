// SPDX-License-Identifier: Apache-2.0
// Bounded blocking byte ring for process output.
#include "agent/stream_buffer.h"

#include <algorithm>
#include <cstring>

namespace nv::agent {

StreamBuffer::StreamBuffer(size_t capacity) : ring_(std::max<size_t>(capacity, 1)) {}

bool StreamBuffer::write(std::span<const uint8_t> data) {
  std::unique_lock lock(mutex_);
  while (!data.empty()) {
    writable_.wait(lock, [&] { return cancelled_ || size_ < ring_.size(); });
    if (cancelled_ || closed_) {
      return false;
    }
    size_t tail = (head_ + size_) % ring_.size();
    size_t room = ring_.size() - size_;
    size_t chunk = std::min({data.size(), room, ring_.size() - tail});
    std::memcpy(ring_.data() + tail, data.data(), chunk);
    size_ += chunk;
    data = data.subspan(chunk);
    readable_.notify_all();
  }
  return true;
}

void StreamBuffer::close() {
  std::lock_guard lock(mutex_);
  closed_ = true;
  readable_.notify_all();
  writable_.notify_all();
}

void StreamBuffer::cancel() {
  std::lock_guard lock(mutex_);
  cancelled_ = true;
  closed_ = true;
  size_ = 0;
  readable_.notify_all();
  writable_.notify_all();
}

StreamBuffer::ReadResult StreamBuffer::read(size_t max_bytes, std::chrono::milliseconds timeout) {
  ReadResult out;
  std::unique_lock lock(mutex_);
  if (!readable_.wait_for(lock, timeout, [&] { return size_ > 0 || closed_; })) {
    return out;
  }
  if (size_ == 0) {
    out.eof = true;
    return out;
  }
  size_t n = std::min(max_bytes, size_);
  out.data.resize(n);
  size_t first = std::min(n, ring_.size() - head_);
  std::memcpy(out.data.data(), ring_.data() + head_, first);
  std::memcpy(out.data.data() + first, ring_.data(), n - first);
  head_ = (head_ + n) % ring_.size();
  size_ -= n;
  writable_.notify_all();
  return out;
}

size_t StreamBuffer::size() const {
  std::lock_guard lock(mutex_);
  return size_;
}

}  // namespace nv::agent
