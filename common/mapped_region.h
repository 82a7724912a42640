// SPDX-License-Identifier: Apache-2.0
// MappedRegion: the single owner of an mmap()ed range.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>

#include "common/result.h"

namespace nv {

class MappedRegion {
 public:
  MappedRegion() = default;
  MappedRegion(MappedRegion&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  MappedRegion& operator=(MappedRegion&& other) noexcept;
  MappedRegion(const MappedRegion&) = delete;
  MappedRegion& operator=(const MappedRegion&) = delete;
  ~MappedRegion() { reset(); }

  // Private anonymous read-write memory, zero-filled.
  [[nodiscard]] static Result<MappedRegion> anonymous(size_t size);
  // A shared mapping of `size` bytes of `fd` at `offset`; `prot` is PROT_READ|PROT_WRITE etc.
  [[nodiscard]] static Result<MappedRegion> fromFd(int fd, size_t size, int64_t offset, int prot);

  [[nodiscard]] uint8_t* data() const noexcept { return data_; }
  [[nodiscard]] size_t size() const noexcept { return size_; }
  [[nodiscard]] std::span<uint8_t> bytes() const noexcept { return {data_, size_}; }
  void reset() noexcept;

 private:
  MappedRegion(uint8_t* data, size_t size) noexcept : data_(data), size_(size) {}
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace nv
