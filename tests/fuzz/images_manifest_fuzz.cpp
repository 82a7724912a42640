// SPDX-License-Identifier: Apache-2.0
// Fuzzes manifest / index / config / policy parsing and validation on arbitrary bytes.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "images/oci.h"
#include "images/policy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) {
    return 0;
  }
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 4) {
    case 0: {
      auto m = nv::images::parseManifest(text);
      if (m) {
        // Round trip: what we serialize must parse again.
        auto again = nv::images::parseManifest(nv::images::serializeManifest(*m));
        if (!again || again->layers.size() != m->layers.size()) {
          __builtin_trap();
        }
      }
      break;
    }
    case 1: {
      auto i = nv::images::parseIndex(text);
      if (i) {
        (void)nv::images::pickPlatform(*i);
      }
      break;
    }
    case 2:
      (void)nv::images::parseConfig(text);
      break;
    default:
      (void)nv::images::parsePolicy(text);
      (void)nv::images::normalizeName(text);
      break;
  }
  return 0;
}
