// SPDX-License-Identifier: Apache-2.0
// Store: the content-addressed OCI image store under a root directory (/var/lib/nanovisor).
//
// Layout:  <root>/blobs/sha256/<hex>        verified blobs (manifests, configs, layers)
//          <root>/index.json                {"version":1,"images":{"name:tag":{"digest":..}}}
//          <root>/rootfs/<chain-hex>.erofs  cached read-only rootfs images
//          <root>/sigs/<manifest-hex>/<n>.sig  detached signatures (see signing.h)
//          <root>/tmp/                      private staging dirs of running imports
//          <root>/lock                      flock serializing commits to blobs/ and index.json
// Imports verify and unpack into a staging dir, then commit under the lock with renames, so a
// failed import leaves the store exactly as it was.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "images/layer.h"
#include "images/oci.h"

namespace nv::images {

inline constexpr std::string_view kDefaultStoreRoot = "/var/lib/nanovisor";

// An image in the store.
struct ImageRecord {
  std::string name;    // "docker.io/library/busybox:latest"
  std::string digest;  // manifest digest
  uint64_t size = 0;   // manifest + config + compressed layers
  Manifest manifest;
  ImageConfig config;
};

// Import progress: a phase ("verify", "unpack", "rootfs") and bytes done of total (0: unknown).
struct Progress {
  std::string phase;
  std::string item;
  uint64_t done = 0;
  uint64_t total = 0;
};
using ProgressFn = std::function<void(const Progress&)>;

struct ImportOptions {
  std::optional<std::string> name;         // overrides the archive's ref name / RepoTags
  uint64_t max_layer_bytes = 8ull << 30;   // compressed layer blob
  LayerLimits limits;                      // per-layer unpack limits
  bool build_rootfs = true;                // also build and cache the EROFS rootfs image
  ProgressFn progress;
};

// RAII exclusive flock on <root>/lock.
class StoreLock {
 public:
  explicit StoreLock(UniqueFd fd) : fd_(std::move(fd)) {}
 private:
  UniqueFd fd_;
};

class Store {
 public:
  // Opens (creating directories as needed) the store at `root`.
  static Result<Store> open(std::string root);

  [[nodiscard]] const std::string& root() const { return root_; }
  [[nodiscard]] std::string blobPath(std::string_view hex) const;
  [[nodiscard]] std::string rootfsDir() const { return root_ + "/rootfs"; }
  [[nodiscard]] std::string tmpDir() const { return root_ + "/tmp"; }
  [[nodiscard]] std::string sigsDir() const { return root_ + "/sigs"; }

  // Imports every linux/amd64 image of an OCI layout (dir or tar) or `docker save` archive.
  Result<std::vector<ImageRecord>> import(const std::string& path, const ImportOptions& options);

  // All images, sorted by name.
  Result<std::vector<ImageRecord>> list() const;
  // One image by name ("busybox" means "busybox:latest"), or by manifest digest.
  Result<ImageRecord> get(std::string_view name) const;
  // Removes a name; then deletes blobs, rootfs images and signatures nothing references.
  Result<void> remove(std::string_view name);
  // JSON: name, digest, size, layers, config summary.
  Result<std::string> inspect(std::string_view name) const;

  // Takes the store lock (blocking).
  Result<StoreLock> lock() const;
  // Makes a private staging directory under tmp/ (caller removes it).
  Result<std::string> makeStagingDir(std::string_view prefix) const;

  // Commits staged files under the lock: each (staged path, final path) is renamed into
  // place unless the final path exists; names map to manifest digests. All or nothing.
  struct Commit {
    std::vector<std::pair<std::string, std::string>> files;
    std::vector<std::pair<std::string, std::string>> names;
  };
  Result<void> commit(const Commit& commit);

 private:
  explicit Store(std::string root) : root_(std::move(root)) {}
  Result<ImageRecord> load(const std::string& name, const std::string& digest) const;

  std::string root_;
};

// Reads a whole file of at most `max_bytes`.
// The sorted entry names of an open directory (without . and ..); empty on error.
std::vector<std::string> listDirFd(int dir_fd);

Result<std::string> readFileBounded(const std::string& path, uint64_t max_bytes);
// Writes `data` to `path` atomically: temp file in the same dir, fsync, rename, fsync dir.
Result<void> writeFileAtomic(const std::string& path, std::string_view data);

}  // namespace nv::images
