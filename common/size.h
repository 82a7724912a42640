// SPDX-License-Identifier: Apache-2.0
// Docker-style sizes (command line, annotations): "64m", "1g", "512k", "1048576".
#pragma once

#include <cstdint>
#include <string_view>

#include "common/result.h"

namespace nv {

// Bytes for a size with an optional b/k/m/g suffix (powers of 1024, case-insensitive).
[[nodiscard]] Result<uint64_t> parseSize(std::string_view text);

}  // namespace nv
