// SPDX-License-Identifier: Apache-2.0
#include "common/mapped_region.h"

#include <sys/mman.h>

#include <string>

namespace nv {

MappedRegion& MappedRegion::operator=(MappedRegion&& other) noexcept {
  if (this != &other) {
    reset();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

Result<MappedRegion> MappedRegion::anonymous(size_t size) {
  if (size == 0) {
    return fail(Errc::kInvalidArgument, "mmap of zero bytes");
  }
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
  if (p == MAP_FAILED) {
    return failErrno("mmap " + std::to_string(size) + " anonymous bytes");
  }
  return MappedRegion(static_cast<uint8_t*>(p), size);
}

Result<MappedRegion> MappedRegion::fromFd(int fd, size_t size, int64_t offset, int prot) {
  if (size == 0) {
    return fail(Errc::kInvalidArgument, "mmap of zero bytes");
  }
  void* p = ::mmap(nullptr, size, prot, MAP_SHARED, fd, offset);
  if (p == MAP_FAILED) {
    return failErrno("mmap " + std::to_string(size) + " bytes of fd " + std::to_string(fd));
  }
  return MappedRegion(static_cast<uint8_t*>(p), size);
}

void MappedRegion::reset() noexcept {
  if (data_ != nullptr) {
    ::munmap(data_, size_);
  }
  data_ = nullptr;
  size_ = 0;
}

}  // namespace nv
