// SPDX-License-Identifier: Apache-2.0
// Image policy (/etc/nanovisor/policy.json): which names may run, which keys are trusted,
// whether signatures are required, and what layers may contain. See docs/images.md.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "images/layer.h"
#include "images/store.h"

namespace nv::images {

inline constexpr std::string_view kDefaultPolicyPath = "/etc/nanovisor/policy.json";

// {"allowedNames": ["docker.io/library/*"], "trustedKeys": ["/etc/nanovisor/keys/a.pem"],
//  "requireSigned": true, "allowSetuid": false, "allowFifos": false}
// Unknown fields make the file invalid. Missing fields: any name, no keys, unsigned allowed.
struct Policy {
  std::vector<std::string> allowed_names;  // fnmatch globs; empty = any name
  std::vector<std::string> trusted_keys;   // PEM public key paths
  bool require_signed = false;
  bool allow_setuid = false;
  bool allow_fifos = false;

  // Layer limits derived from this policy (setuid/FIFO permissions).
  [[nodiscard]] LayerLimits layerLimits(LayerLimits base = {}) const;
};

Result<Policy> parsePolicy(std::string_view json);
Result<Policy> loadPolicy(const std::string& path);

// Checks an image against the policy. The error names the rule that refused it
// ("policy rule allowedNames ...", "policy rule requireSigned ...").
Result<void> checkPolicy(const Store& store, const ImageRecord& image, const Policy& policy);

}  // namespace nv::images
