// SPDX-License-Identifier: Apache-2.0
// Applies OCI layer tarballs (tar, tar+gzip, tar+zstd) onto a directory tree, safely.
//
// Every entry of an untrusted layer is checked: no absolute paths or `..`, no writes through a
// symlink that leads outside the root, hardlinks only to paths inside the root, no device nodes
// (FIFOs only if allowed), setuid/setgid bits stripped unless allowed, and zip-bomb limits on
// total bytes, per-file bytes, entry count and compression ratio. Paths are resolved one
// component at a time with openat(O_NOFOLLOW) from the root fd: no chdir, no following links.
// OCI whiteouts (`.wh.<name>`) and opaque directories (`.wh..wh..opq`) are applied.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "common/result.h"
#include "images/oci.h"

namespace nv::images {

// Limits and policy for one layer. Defaults fit real images; tests lower them.
struct LayerLimits {
  uint64_t max_total_bytes = 16ull << 30;  // uncompressed tar stream, per layer
  uint64_t max_file_bytes = 8ull << 30;    // one regular file
  uint64_t max_entries = 1'000'000;        // tar entries per layer
  uint64_t max_ratio = 1000;               // uncompressed:compressed, once past ratio_floor
  uint64_t ratio_floor = 64ull << 20;      // ratio is not checked below this many bytes
  bool allow_setuid = false;               // keep setuid/setgid bits (else stripped)
  bool allow_fifos = false;                // create FIFOs (else refused)
  bool allow_devices = false;              // create char/block devices (else refused)
};

// What applying a layer produced.
struct LayerResult {
  std::string diff_id_hex;         // sha256 of the uncompressed tar stream
  uint64_t entries = 0;
  uint64_t uncompressed_bytes = 0;
  uint64_t stripped_setuid = 0;    // entries whose setuid/setgid bits were removed
};

// Called with the number of compressed bytes consumed so far (about every MiB).
using ByteProgress = std::function<void(uint64_t)>;

// Applies the layer read from `layer_fd` onto the directory `root_fd`. Ownership is restored
// only when running as root. On error the tree is partially written: callers apply into a
// private staging directory and discard it on failure.
Result<LayerResult> applyLayer(int root_fd, int layer_fd, Compression compression,
                               const LayerLimits& limits, const ByteProgress& progress = {});

// The same for a layer held in memory (fuzzing, tests).
Result<LayerResult> applyLayerBuffer(int root_fd, std::span<const uint8_t> data,
                                     Compression compression, const LayerLimits& limits);

// Only hashes the uncompressed stream (diff_id) under the size/ratio limits, writing nothing.
Result<LayerResult> hashLayer(int layer_fd, Compression compression, const LayerLimits& limits);

// Removes `name` in `dir_fd` recursively without following symlinks. ENOENT is success.
Result<void> removeAt(int dir_fd, const std::string& name);

}  // namespace nv::images
