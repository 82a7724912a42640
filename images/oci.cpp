// SPDX-License-Identifier: Apache-2.0
// Parsing and validation of OCI / Docker image manifests, indexes and configs.
#include "images/oci.h"

#include <nlohmann/json.hpp>

#include "images/digest.h"

namespace nv::images {
namespace {

using nlohmann::json;

Result<json> parseJson(std::string_view text, std::string_view what) {
  if (text.size() > kMaxMetadataBytes) {
    return fail(Errc::kTooLarge, std::string(what) + " is larger than 4 MiB");
  }
  json j = json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded()) {
    return fail(Errc::kInvalidArgument, std::string(what) + " is not valid JSON");
  }
  if (!j.is_object()) {
    return fail(Errc::kInvalidArgument, std::string(what) + " is not a JSON object");
  }
  return j;
}

Result<std::string> optString(const json& obj, const char* key, std::string_view what) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    return std::string();
  }
  if (!it->is_string()) {
    return fail(Errc::kInvalidArgument, std::string(what) + ": '" + key + "' is not a string");
  }
  return it->get<std::string>();
}

Result<std::vector<std::string>> optStrings(const json& obj, const char* key,
                                            std::string_view what) {
  std::vector<std::string> out;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    return out;
  }
  if (!it->is_array()) {
    return fail(Errc::kInvalidArgument, std::string(what) + ": '" + key + "' is not an array");
  }
  for (const auto& v : *it) {
    if (!v.is_string()) {
      return fail(Errc::kInvalidArgument,
                  std::string(what) + ": '" + key + "' has a non-string element");
    }
    out.push_back(v.get<std::string>());
  }
  return out;
}

Result<std::map<std::string, std::string>> parseAnnotations(const json& obj,
                                                           std::string_view what) {
  std::map<std::string, std::string> out;
  auto it = obj.find("annotations");
  if (it == obj.end() || it->is_null()) {
    return out;
  }
  if (!it->is_object()) {
    return fail(Errc::kInvalidArgument, std::string(what) + ": annotations is not an object");
  }
  for (const auto& [k, v] : it->items()) {
    if (!v.is_string()) {
      return fail(Errc::kInvalidArgument,
                  std::string(what) + ": annotation '" + k + "' is not a string");
    }
    out[k] = v.get<std::string>();
  }
  return out;
}

Result<Descriptor> parseDescriptor(const json& j, std::string_view what) {
  if (!j.is_object()) {
    return fail(Errc::kInvalidArgument, std::string(what) + " is not an object");
  }
  Descriptor d;
  NV_ASSIGN_OR_RETURN(d.media_type, optString(j, "mediaType", what));
  if (d.media_type.empty()) {
    return fail(Errc::kInvalidArgument, std::string(what) + " has no mediaType");
  }
  NV_ASSIGN_OR_RETURN(d.digest, optString(j, "digest", what));
  auto hex = digestHex(d.digest);
  if (!hex) {
    return tl::unexpected(hex.error().wrap(what));
  }
  auto size = j.find("size");
  if (size == j.end() || !size->is_number_integer()) {
    return fail(Errc::kInvalidArgument, std::string(what) + " has no integer size");
  }
  int64_t s = size->get<int64_t>();
  if (s < 0) {
    return fail(Errc::kInvalidArgument, std::string(what) + " has a negative size");
  }
  d.size = static_cast<uint64_t>(s);
  NV_ASSIGN_OR_RETURN(d.annotations, parseAnnotations(j, what));
  auto plat = j.find("platform");
  if (plat != j.end() && !plat->is_null()) {
    if (!plat->is_object()) {
      return fail(Errc::kInvalidArgument, std::string(what) + ": platform is not an object");
    }
    Platform p;
    NV_ASSIGN_OR_RETURN(p.os, optString(*plat, "os", what));
    NV_ASSIGN_OR_RETURN(p.architecture, optString(*plat, "architecture", what));
    NV_ASSIGN_OR_RETURN(p.variant, optString(*plat, "variant", what));
    d.platform = p;
  }
  return d;
}

Result<void> checkSchemaVersion(const json& j, std::string_view what) {
  auto it = j.find("schemaVersion");
  if (it == j.end() || !it->is_number_integer() || it->get<int64_t>() != 2) {
    return fail(Errc::kUnsupported, std::string(what) + ": schemaVersion is not 2");
  }
  return {};
}

bool isConfigType(std::string_view t) { return t == media::kOciConfig || t == media::kDockerConfig; }

}  // namespace

bool isManifestType(std::string_view t) {
  return t == media::kOciManifest || t == media::kDockerManifest;
}

bool isIndexType(std::string_view t) {
  return t == media::kOciIndex || t == media::kDockerManifestList;
}

Result<Compression> layerCompression(std::string_view t) {
  if (t == media::kOciLayerTar) {
    return Compression::kNone;
  }
  if (t == media::kOciLayerGzip || t == media::kDockerLayerGzip) {
    return Compression::kGzip;
  }
  if (t == media::kOciLayerZstd) {
    return Compression::kZstd;
  }
  return fail(Errc::kUnsupported, "layer media type '" + std::string(t.substr(0, 100)) +
                                      "' is not supported");
}

Result<Manifest> parseManifest(std::string_view text) {
  NV_ASSIGN_OR_RETURN(json j, parseJson(text, "manifest"));
  NV_TRY(checkSchemaVersion(j, "manifest"));
  Manifest m;
  NV_ASSIGN_OR_RETURN(m.media_type, optString(j, "mediaType", "manifest"));
  if (!m.media_type.empty() && !isManifestType(m.media_type)) {
    return fail(Errc::kUnsupported, "manifest mediaType '" + m.media_type.substr(0, 100) +
                                        "' is not an image manifest");
  }
  auto cfg = j.find("config");
  if (cfg == j.end()) {
    return fail(Errc::kInvalidArgument, "manifest has no config");
  }
  NV_ASSIGN_OR_RETURN(m.config, parseDescriptor(*cfg, "manifest config"));
  if (!isConfigType(m.config.media_type)) {
    return fail(Errc::kUnsupported, "manifest config mediaType '" +
                                        m.config.media_type.substr(0, 100) + "' is not supported");
  }
  if (m.config.size > kMaxMetadataBytes) {
    return fail(Errc::kTooLarge, "manifest config is larger than 4 MiB");
  }
  auto layers = j.find("layers");
  if (layers == j.end() || !layers->is_array()) {
    return fail(Errc::kInvalidArgument, "manifest has no layers array");
  }
  if (layers->size() > kMaxLayers) {
    return fail(Errc::kTooLarge, "manifest has more than 256 layers");
  }
  for (size_t i = 0; i < layers->size(); ++i) {
    std::string what = "manifest layer " + std::to_string(i);
    NV_ASSIGN_OR_RETURN(Descriptor d, parseDescriptor((*layers)[i], what));
    auto comp = layerCompression(d.media_type);
    if (!comp) {
      return tl::unexpected(comp.error().wrap(what));
    }
    m.layers.push_back(std::move(d));
  }
  NV_ASSIGN_OR_RETURN(m.annotations, parseAnnotations(j, "manifest"));
  return m;
}

Result<Index> parseIndex(std::string_view text) {
  NV_ASSIGN_OR_RETURN(json j, parseJson(text, "index"));
  NV_TRY(checkSchemaVersion(j, "index"));
  Index idx;
  NV_ASSIGN_OR_RETURN(idx.media_type, optString(j, "mediaType", "index"));
  if (!idx.media_type.empty() && !isIndexType(idx.media_type)) {
    return fail(Errc::kUnsupported,
                "index mediaType '" + idx.media_type.substr(0, 100) + "' is not an index");
  }
  auto ms = j.find("manifests");
  if (ms == j.end() || !ms->is_array()) {
    return fail(Errc::kInvalidArgument, "index has no manifests array");
  }
  if (ms->size() > kMaxIndexEntries) {
    return fail(Errc::kTooLarge, "index has more than 1024 manifests");
  }
  for (size_t i = 0; i < ms->size(); ++i) {
    std::string what = "index entry " + std::to_string(i);
    NV_ASSIGN_OR_RETURN(Descriptor d, parseDescriptor((*ms)[i], what));
    if (!isManifestType(d.media_type) && !isIndexType(d.media_type)) {
      return fail(Errc::kUnsupported, what + ": mediaType '" + d.media_type.substr(0, 100) +
                                          "' is neither a manifest nor an index");
    }
    if (d.size > kMaxMetadataBytes) {
      return fail(Errc::kTooLarge, what + " is larger than 4 MiB");
    }
    idx.manifests.push_back(std::move(d));
  }
  return idx;
}

Result<ImageConfig> parseConfig(std::string_view text) {
  NV_ASSIGN_OR_RETURN(json j, parseJson(text, "config"));
  ImageConfig c;
  NV_ASSIGN_OR_RETURN(c.architecture, optString(j, "architecture", "config"));
  NV_ASSIGN_OR_RETURN(c.os, optString(j, "os", "config"));
  NV_ASSIGN_OR_RETURN(c.created, optString(j, "created", "config"));
  auto rootfs = j.find("rootfs");
  if (rootfs == j.end() || !rootfs->is_object()) {
    return fail(Errc::kInvalidArgument, "config has no rootfs object");
  }
  NV_ASSIGN_OR_RETURN(std::string type, optString(*rootfs, "type", "config rootfs"));
  if (type != "layers") {
    return fail(Errc::kUnsupported, "config rootfs.type is not 'layers'");
  }
  NV_ASSIGN_OR_RETURN(c.diff_ids, optStrings(*rootfs, "diff_ids", "config rootfs"));
  if (c.diff_ids.size() > kMaxLayers) {
    return fail(Errc::kTooLarge, "config has more than 256 diff_ids");
  }
  for (const auto& d : c.diff_ids) {
    auto hex = digestHex(d);
    if (!hex) {
      return tl::unexpected(hex.error().wrap("config diff_id"));
    }
  }
  auto cfg = j.find("config");
  if (cfg != j.end() && !cfg->is_null()) {
    if (!cfg->is_object()) {
      return fail(Errc::kInvalidArgument, "config.config is not an object");
    }
    NV_ASSIGN_OR_RETURN(c.env, optStrings(*cfg, "Env", "config.config"));
    NV_ASSIGN_OR_RETURN(c.cmd, optStrings(*cfg, "Cmd", "config.config"));
    NV_ASSIGN_OR_RETURN(c.entrypoint, optStrings(*cfg, "Entrypoint", "config.config"));
    NV_ASSIGN_OR_RETURN(c.working_dir, optString(*cfg, "WorkingDir", "config.config"));
    NV_ASSIGN_OR_RETURN(c.user, optString(*cfg, "User", "config.config"));
  }
  return c;
}

std::string serializeManifest(const Manifest& m) {
  auto desc = [](const Descriptor& d) {
    json o = json::object();
    o["mediaType"] = d.media_type;
    o["digest"] = d.digest;
    o["size"] = d.size;
    if (!d.annotations.empty()) {
      o["annotations"] = d.annotations;
    }
    return o;
  };
  json j = json::object();
  j["schemaVersion"] = 2;
  j["mediaType"] = media::kOciManifest;
  j["config"] = desc(m.config);
  j["layers"] = json::array();
  for (const auto& l : m.layers) {
    j["layers"].push_back(desc(l));
  }
  if (!m.annotations.empty()) {
    j["annotations"] = m.annotations;
  }
  return j.dump();
}

Result<Descriptor> pickPlatform(const Index& index, std::string_view os, std::string_view arch) {
  std::string seen;
  for (const auto& d : index.manifests) {
    if (!isManifestType(d.media_type)) {
      continue;
    }
    if (!d.platform) {
      continue;
    }
    if (d.platform->os == os && d.platform->architecture == arch) {
      return d;
    }
    if (seen.size() < 200) {
      seen += (seen.empty() ? "" : ", ") + d.platform->os + "/" + d.platform->architecture;
    }
  }
  return fail(Errc::kNotFound, "index has no " + std::string(os) + "/" + std::string(arch) +
                                   " manifest (has: " + (seen.empty() ? "none" : seen) + ")");
}

Result<std::string> normalizeName(std::string_view name) {
  if (name.empty()) {
    return fail(Errc::kInvalidArgument, "image name is empty");
  }
  if (name.size() > 255) {
    return fail(Errc::kInvalidArgument, "image name is longer than 255 characters");
  }
  for (char c : name) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) {
      return fail(Errc::kInvalidArgument, "image name contains a space or control character");
    }
  }
  std::string n(name);
  if (n.find('@') != std::string::npos) {
    return n;
  }
  size_t slash = n.rfind('/');
  size_t colon = n.rfind(':');
  if (colon == std::string::npos || (slash != std::string::npos && colon < slash)) {
    n += ":latest";
  }
  if (n.front() == ':' || n.back() == ':') {
    return fail(Errc::kInvalidArgument, "image name '" + n + "' has an empty part");
  }
  return n;
}

}  // namespace nv::images
