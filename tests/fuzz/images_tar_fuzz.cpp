// SPDX-License-Identifier: Apache-2.0
// Fuzzes the layer applier (tar + gzip/zstd + whiteouts) into a fresh temp dir per input.
// First byte: compression (bits 0-1) and FIFO/setuid policy (bits 2-3); the rest is the layer.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/unique_fd.h"
#include "images/layer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) {
    return 0;
  }
  static char base_path[] = "/tmp/nv-images-tar-fuzz-XXXXXX";
  static const std::string base = [] {
    if (::mkdtemp(base_path) == nullptr) {
      std::abort();
    }
    std::atexit([] { ::rmdir(base_path); });  // root/ is removed after every input
    return std::string(base_path);
  }();
  nv::UniqueFd base_fd(::open(base.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!base_fd || ::mkdirat(base_fd.get(), "root", 0755) != 0) {
    std::abort();
  }
  {
    nv::UniqueFd root(::openat(base_fd.get(), "root", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    nv::images::LayerLimits limits;
    limits.max_total_bytes = 8u << 20;
    limits.max_file_bytes = 1u << 20;
    limits.max_entries = 2000;
    limits.ratio_floor = 1u << 20;
    limits.allow_fifos = (data[0] & 4) != 0;
    limits.allow_setuid = (data[0] & 8) != 0;
    auto comp = static_cast<nv::images::Compression>((data[0] & 3) % 3);
    (void)nv::images::applyLayerBuffer(root.get(), {data + 1, size - 1}, comp, limits);
  }
  // Nothing may have been written outside root/.
  if (!nv::images::removeAt(base_fd.get(), "root")) {
    std::abort();
  }
  struct stat st {};
  if (::fstatat(base_fd.get(), "root", &st, AT_SYMLINK_NOFOLLOW) == 0) {
    std::abort();
  }
  return 0;
}
