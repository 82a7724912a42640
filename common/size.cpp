// SPDX-License-Identifier: Apache-2.0
#include "common/size.h"

#include <charconv>
#include <string>

namespace nv {

Result<uint64_t> parseSize(std::string_view text) {
  auto bad = [&] {
    return fail(Errc::kInvalidArgument,
                "invalid size '" + std::string(text) + "' (use a number with b, k, m or g)");
  };
  if (text.empty()) return bad();
  uint64_t shift = 0;
  switch (text.back()) {
    case 'b': case 'B': text.remove_suffix(1); break;
    case 'k': case 'K': shift = 10; text.remove_suffix(1); break;
    case 'm': case 'M': shift = 20; text.remove_suffix(1); break;
    case 'g': case 'G': shift = 30; text.remove_suffix(1); break;
    default: break;
  }
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return bad();
  if (value > (UINT64_MAX >> shift)) return bad();
  return value << shift;
}

}  // namespace nv
