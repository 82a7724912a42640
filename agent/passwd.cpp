// SPDX-License-Identifier: Apache-2.0
// Parses passwd(5)/group(5) text to resolve container users.
#include "agent/passwd.h"

#include <charconv>
#include <fstream>
#include <optional>

namespace nv::agent {
namespace {

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (true) {
    size_t next = s.find(sep, pos);
    out.push_back(s.substr(pos, next == std::string_view::npos ? next : next - pos));
    if (next == std::string_view::npos) {
      return out;
    }
    pos = next + 1;
  }
}

std::optional<uint32_t> parseId(std::string_view s) {
  uint32_t v = 0;
  if (s.empty()) {
    return std::nullopt;
  }
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) {
    return std::nullopt;
  }
  return v;
}

// Calls fn(fields) for each well-formed line with at least `min_fields` fields.
template <class F>
void forEachLine(std::string_view text, size_t min_fields, F fn) {
  for (auto line : split(text, '\n')) {
    if (line.empty() || line.front() == '#') {
      continue;
    }
    auto fields = split(line, ':');
    if (fields.size() >= min_fields) {
      if (fn(fields)) {
        return;
      }
    }
  }
}

}  // namespace

Result<ResolvedUser> resolveUser(std::string_view user, std::string_view passwd,
                                 std::string_view group) {
  ResolvedUser out;
  auto colon = user.find(':');
  std::string_view user_part = user.substr(0, colon);
  std::string_view group_part = colon == std::string_view::npos ? "" : user.substr(colon + 1);
  if (user_part.empty()) {
    return fail(Errc::kInvalidArgument, "user: empty user name");
  }
  std::string name;
  bool found = false;
  auto numeric_uid = parseId(user_part);
  forEachLine(passwd, 7, [&](const std::vector<std::string_view>& f) {
    auto uid = parseId(f[2]);
    auto gid = parseId(f[3]);
    if (!uid || !gid) {
      return false;
    }
    if ((numeric_uid && *uid == *numeric_uid) || (!numeric_uid && f[0] == user_part)) {
      out.uid = *uid;
      out.gid = *gid;
      out.home = std::string(f[5]);
      name = std::string(f[0]);
      found = true;
      return true;
    }
    return false;
  });
  if (!found) {
    if (!numeric_uid) {
      return fail(Errc::kNotFound,
                  "user \"" + std::string(user_part) + "\" not found in the container's /etc/passwd");
    }
    out.uid = *numeric_uid;
  }
  if (!group_part.empty()) {
    auto numeric_gid = parseId(group_part);
    bool group_found = numeric_gid.has_value();
    if (numeric_gid) {
      out.gid = *numeric_gid;
    } else {
      forEachLine(group, 3, [&](const std::vector<std::string_view>& f) {
        auto gid = parseId(f[2]);
        if (gid && f[0] == group_part) {
          out.gid = *gid;
          group_found = true;
          return true;
        }
        return false;
      });
    }
    if (!group_found) {
      return fail(Errc::kNotFound, "group \"" + std::string(group_part) +
                                       "\" not found in the container's /etc/group");
    }
  }
  if (!name.empty()) {
    forEachLine(group, 4, [&](const std::vector<std::string_view>& f) {
      auto gid = parseId(f[2]);
      if (!gid) {
        return false;
      }
      for (auto member : split(f[3], ',')) {
        if (member == name && *gid != out.gid) {
          out.additional_gids.push_back(*gid);
        }
      }
      return false;
    });
  }
  return out;
}

std::string readSmallFile(const std::string& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return {};
  }
  std::string out(max_bytes, '\0');
  in.read(out.data(), static_cast<std::streamsize>(max_bytes));
  out.resize(static_cast<size_t>(in.gcount()));
  return out;
}

}  // namespace nv::agent
