// SPDX-License-Identifier: Apache-2.0
// Bounded blocking byte ring for process output.
#include "agent/stream_buffer.h"

#include <algorithm>
#include <cstring>

namespace nv::agent {

StreamBuffer::StreamBuffer(size_t capacity) : capacity_(std::max<size_t>(capacity, 1)) {}

void StreamBuffer::release() {
  ring_.reset();
  head_ = 0;
}

size_t StreamBuffer::allocated() const {
  std::lock_guard lock(mutex_);
  return ring_ ? capacity_ : 0;
}

bool StreamBuffer::write(std::span<const uint8_t> data) {
  std::unique_lock lock(mutex_);
  while (!data.empty()) {
    writable_.wait(lock, [&] { return cancelled_ || size_ < capacity_; });
    if (cancelled_ || closed_) {
      return false;
    }
    if (!ring_) {
      ring_.reset(new uint8_t[capacity_]);  // not zero-filled: pages come as bytes arrive
      head_ = 0;
    }
    size_t tail = (head_ + size_) % capacity_;
    size_t room = capacity_ - size_;
    size_t chunk = std::min({data.size(), room, capacity_ - tail});
    std::memcpy(ring_.get() + tail, data.data(), chunk);
    size_ += chunk;
    data = data.subspan(chunk);
    readable_.notify_all();
  }
  return true;
}

void StreamBuffer::close() {
  std::lock_guard lock(mutex_);
  closed_ = true;
  if (size_ == 0) release();
  readable_.notify_all();
  writable_.notify_all();
}

void StreamBuffer::cancel() {
  std::lock_guard lock(mutex_);
  cancelled_ = true;
  closed_ = true;
  size_ = 0;
  release();
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
  size_t first = std::min(n, capacity_ - head_);
  std::memcpy(out.data.data(), ring_.get() + head_, first);
  std::memcpy(out.data.data() + first, ring_.get(), n - first);
  head_ = (head_ + n) % capacity_;
  size_ -= n;
  if (size_ == 0 && closed_) release();
  writable_.notify_all();
  return out;
}

size_t StreamBuffer::size() const {
  std::lock_guard lock(mutex_);
  return size_;
}

bool StreamBuffer::finished() const {
  std::lock_guard lock(mutex_);
  return cancelled_ || (closed_ && size_ == 0);
}

}  // namespace nv::agent
