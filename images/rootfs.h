// SPDX-License-Identifier: Apache-2.0
// Rootfs block images: an image's flattened layers as a read-only EROFS file (mkfs.erofs),
// cached by chain ID; the same for containerd snapshot directories; ext4 scratch disks.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/result.h"
#include "images/layer.h"
#include "images/oci.h"
#include "images/store.h"

namespace nv::images {

// The OCI chain ID of a list of diff_ids: chain(0) = diff_id(0),
// chain(n) = sha256(chain(n-1) + " " + diff_id(n)). Returns "sha256:<hex>".
std::string chainId(const std::vector<std::string>& diff_ids);

// Applies `manifest`'s layers in order into the directory `tree`, checking each layer's
// uncompressed sha256 against `config.diff_ids`. `blob_path` maps a layer digest hex to a file.
Result<void> unpackLayers(const std::string& tree, const Manifest& manifest,
                          const ImageConfig& config,
                          const std::function<std::string(const std::string&)>& blob_path,
                          const LayerLimits& limits, const ProgressFn& progress = {});

// Runs mkfs.erofs (uncompressed, quiet) on `tree` writing `out`.
Result<void> buildErofs(const std::string& tree, const std::string& out);

// The cached EROFS rootfs of an image (<root>/rootfs/<chain-hex>.erofs), built on first use.
Result<std::string> rootfsImage(Store& store, const ImageRecord& image,
                                const LayerLimits& limits = {}, const ProgressFn& progress = {});

// The EROFS image of an overlay stack of directories (containerd snapshot mounts): `lowerdirs`
// in overlayfs order (first is the top), then `upperdir` (may be empty) on top. Overlay
// whiteouts (0/0 char devices) and opaque dirs (trusted.overlay.opaque=y) are honoured. Cached
// under <root>/rootfs/snapshots/<key>.erofs, key = sha256 over every entry's path and
// lstat identity (dev, ino, mode, uid, gid, size, mtime, ctime), so any change rebuilds it.
Result<std::string> rootfsImageFromDirs(Store& store, const std::vector<std::string>& lowerdirs,
                                        const std::string& upperdir);

// The identity key used by rootfsImageFromDirs (hex).
Result<std::string> dirsIdentity(const std::vector<std::string>& lowerdirs,
                                 const std::string& upperdir);

// Creates a sparse file of `size_bytes` at `path` (must not exist) and formats it ext4
// (mkfs.ext4 -q): the per-container writable layer.
Result<void> makeScratchDisk(const std::string& path, uint64_t size_bytes);

}  // namespace nv::images
