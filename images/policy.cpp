// SPDX-License-Identifier: Apache-2.0
// Image policy parsing (strict) and enforcement.
#include "images/policy.h"

#include <fnmatch.h>

#include <nlohmann/json.hpp>

#include "images/signing.h"

namespace nv::images {
namespace {

using nlohmann::json;

Result<std::vector<std::string>> stringList(const json& j, const char* key) {
  std::vector<std::string> out;
  if (!j.is_array()) {
    return fail(Errc::kInvalidArgument, std::string("policy: ") + key + " is not an array");
  }
  for (const auto& v : j) {
    if (!v.is_string()) {
      return fail(Errc::kInvalidArgument, std::string("policy: ") + key + " has a non-string");
    }
    out.push_back(v.get<std::string>());
  }
  return out;
}

Result<bool> boolean(const json& j, const char* key) {
  if (!j.is_boolean()) {
    return fail(Errc::kInvalidArgument, std::string("policy: ") + key + " is not a boolean");
  }
  return j.get<bool>();
}

}  // namespace

LayerLimits Policy::layerLimits(LayerLimits base) const {
  base.allow_setuid = allow_setuid;
  base.allow_fifos = allow_fifos;
  return base;
}

Result<Policy> parsePolicy(std::string_view text) {
  json j = json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return fail(Errc::kInvalidArgument, "policy is not a JSON object");
  }
  Policy p;
  for (const auto& [key, v] : j.items()) {
    if (key == "allowedNames") {
      NV_ASSIGN_OR_RETURN(p.allowed_names, stringList(v, "allowedNames"));
    } else if (key == "trustedKeys") {
      NV_ASSIGN_OR_RETURN(p.trusted_keys, stringList(v, "trustedKeys"));
    } else if (key == "requireSigned") {
      NV_ASSIGN_OR_RETURN(p.require_signed, boolean(v, "requireSigned"));
    } else if (key == "allowSetuid") {
      NV_ASSIGN_OR_RETURN(p.allow_setuid, boolean(v, "allowSetuid"));
    } else if (key == "allowFifos") {
      NV_ASSIGN_OR_RETURN(p.allow_fifos, boolean(v, "allowFifos"));
    } else {
      return fail(Errc::kInvalidArgument, "policy: unknown field '" + key.substr(0, 80) + "'");
    }
  }
  if (p.require_signed && p.trusted_keys.empty()) {
    return fail(Errc::kInvalidArgument, "policy: requireSigned is set but trustedKeys is empty");
  }
  return p;
}

Result<Policy> loadPolicy(const std::string& path) {
  NV_ASSIGN_OR_RETURN(std::string text, readFileBounded(path, 1 << 20));
  auto p = parsePolicy(text);
  if (!p) {
    return tl::unexpected(p.error().wrap(path));
  }
  return p;
}

Result<void> checkPolicy(const Store& store, const ImageRecord& image, const Policy& policy) {
  if (!policy.allowed_names.empty()) {
    bool ok = false;
    for (const auto& pattern : policy.allowed_names) {
      if (::fnmatch(pattern.c_str(), image.name.c_str(), 0) == 0) {
        ok = true;
        break;
      }
    }
    if (!ok) {
      return fail(Errc::kPermission, "policy rule allowedNames refused image '" + image.name +
                                         "': the name matches no allowed pattern");
    }
  }
  if (!policy.require_signed) {
    return {};
  }
  NV_ASSIGN_OR_RETURN(auto sigs, loadSignatures(store, image.digest));
  if (sigs.empty()) {
    return fail(Errc::kPermission, "policy rule requireSigned refused image '" + image.name +
                                       "': it has no signature");
  }
  for (const auto& path : policy.trusted_keys) {
    auto key = PublicKey::load(path);
    if (!key) {
      return fail(Errc::kPermission, "policy rule trustedKeys: " + key.error().message());
    }
    for (const auto& s : sigs) {
      if (key->verify(s, image.digest)) {
        return {};
      }
    }
  }
  return fail(Errc::kPermission, "policy rule requireSigned refused image '" + image.name +
                                     "': none of its " + std::to_string(sigs.size()) +
                                     " signature(s) verifies with a trusted key");
}

}  // namespace nv::images
