// SPDX-License-Identifier: Apache-2.0
// StreamBuffer: a bounded, blocking byte ring between a process's output pipe and the host.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

namespace nv::agent {

// A bounded FIFO of bytes with one producer (the pump thread reading the process's pipe) and
// any number of consumers (ReadStdout calls). write() blocks while the buffer is full, so the
// pump stops reading the pipe and the process blocks in write(): back-pressure. Thread-safe.
// The ring is allocated at the first write and freed once the stream is over and drained (or
// cancelled): a process that writes nothing costs no buffer, and finished execs kept for a
// later WaitProcess do not hold one (they used to hold 2 MiB each until the guest ran out).
class StreamBuffer {
 public:
  explicit StreamBuffer(size_t capacity);

  // Appends all of `data`, waiting for room. Returns false when the buffer was cancelled.
  bool write(std::span<const uint8_t> data);

  // Marks the end of the stream: readers get the remaining bytes, then eof.
  void close();

  // Drops all data and wakes everyone; later writes fail and reads return eof.
  void cancel();

  struct ReadResult {
    std::vector<uint8_t> data;
    bool eof = false;  // no data and the stream is finished
  };
  // Returns up to `max_bytes`, waiting until some data or the end arrives (or `timeout`
  // passes, then empty data with eof=false).
  ReadResult read(size_t max_bytes, std::chrono::milliseconds timeout = std::chrono::hours(24));

  [[nodiscard]] size_t size() const;
  // The stream is over and every byte was read (or it was cancelled).
  [[nodiscard]] bool finished() const;
  [[nodiscard]] size_t capacity() const { return capacity_; }
  // Bytes of ring memory held now (0 before the first write and after the drained end).
  [[nodiscard]] size_t allocated() const;

 private:
  mutable std::mutex mutex_;
  std::condition_variable readable_;
  std::condition_variable writable_;
  void release();  // frees the ring; locked caller

  size_t capacity_;
  std::unique_ptr<uint8_t[]> ring_;  // capacity_ bytes once allocated
  size_t head_ = 0;  // next byte to read
  size_t size_ = 0;
  bool closed_ = false;
  bool cancelled_ = false;
};

}  // namespace nv::agent
