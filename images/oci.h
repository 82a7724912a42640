// SPDX-License-Identifier: Apache-2.0
// OCI (and Docker v2) image metadata types, parsed from untrusted JSON with validation.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace nv::images {

namespace media {
inline constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kOciConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view kOciLayerTar = "application/vnd.oci.image.layer.v1.tar";
inline constexpr std::string_view kOciLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr std::string_view kOciLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr std::string_view kDockerManifestList =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kDockerManifest =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kDockerConfig = "application/vnd.docker.container.image.v1+json";
inline constexpr std::string_view kDockerLayerGzip =
    "application/vnd.docker.image.rootfs.diff.tar.gzip";
}  // namespace media

// Size limits for metadata blobs (manifests, indexes, configs).
inline constexpr uint64_t kMaxMetadataBytes = 4ull << 20;
// At most this many layers per manifest, manifests per index.
inline constexpr size_t kMaxLayers = 256;
inline constexpr size_t kMaxIndexEntries = 1024;

struct Platform {
  std::string os;
  std::string architecture;
  std::string variant;
};

// A content descriptor {mediaType, digest, size}. digest is validated "sha256:<hex>".
struct Descriptor {
  std::string media_type;
  std::string digest;
  uint64_t size = 0;
  std::map<std::string, std::string> annotations;
  std::optional<Platform> platform;
};

enum class Compression { kNone, kGzip, kZstd };

// An image manifest (OCI or Docker v2 schema 2).
struct Manifest {
  std::string media_type;  // may be empty in OCI manifests
  Descriptor config;
  std::vector<Descriptor> layers;
  std::map<std::string, std::string> annotations;
};

// An image index (OCI) or manifest list (Docker).
struct Index {
  std::string media_type;
  std::vector<Descriptor> manifests;
};

// The parts of an image config we use.
struct ImageConfig {
  std::string architecture;
  std::string os;
  std::string created;
  std::vector<std::string> diff_ids;  // validated sha256 digests, one per layer
  std::vector<std::string> env;
  std::vector<std::string> cmd;
  std::vector<std::string> entrypoint;
  std::string working_dir;
  std::string user;
};

// Parsers: each refuses malformed JSON, wrong types, bad digests, unknown media types and
// oversized input with a one-line error naming the problem.
Result<Manifest> parseManifest(std::string_view json);
Result<Index> parseIndex(std::string_view json);
Result<ImageConfig> parseConfig(std::string_view json);

// True if `media_type` names a manifest / an index (OCI or Docker).
bool isManifestType(std::string_view media_type);
bool isIndexType(std::string_view media_type);

// The compression of a layer media type; error for unknown or non-layer types.
Result<Compression> layerCompression(std::string_view media_type);

// Serializes an OCI manifest (used when converting `docker save` archives). Deterministic.
std::string serializeManifest(const Manifest& manifest);

// Picks the linux/amd64 manifest from an index; error naming the platforms present otherwise.
Result<Descriptor> pickPlatform(const Index& index, std::string_view os = "linux",
                                std::string_view arch = "amd64");

// Normalizes an image name: adds ":latest" when no tag or digest is given. Refuses empty,
// overlong or whitespace/control-character names.
Result<std::string> normalizeName(std::string_view name);

}  // namespace nv::images
