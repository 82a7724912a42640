// SPDX-License-Identifier: Apache-2.0
#include "agent/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <set>

#include "common/unique_fd.h"

namespace nv::agent {
namespace {

bool cleanAbsolute(const std::string& path) {
  if (path.size() < 2 || path.size() > 4096 || path.front() != '/' || path.back() == '/') {
    return false;
  }
  size_t start = 1;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    const std::string part = path.substr(start, end - start);
    if (part.empty() || part == "." || part == ".." || part.find('\0') != std::string::npos) {
      return false;
    }
    start = end + 1;
  }
  return true;
}

}  // namespace

Result<void> validateFiles(const google::protobuf::RepeatedPtrField<pb::File>& files) {
  if (static_cast<size_t>(files.size()) > kMaxFiles) {
    return fail(Errc::kTooLarge, "more than " + std::to_string(kMaxFiles) + " files");
  }
  std::set<std::string> seen;
  for (const auto& file : files) {
    if (!cleanAbsolute(file.destination())) {
      return fail(Errc::kInvalidArgument, "file destination '" + file.destination() +
                                              "' must be a clean absolute path other than /");
    }
    if (!seen.insert(file.destination()).second) {
      return fail(Errc::kInvalidArgument, "file " + file.destination() + " given twice");
    }
    if (file.data().size() > kMaxFileBytes) {
      return fail(Errc::kTooLarge, "file " + file.destination() + " is over 64 KiB");
    }
  }
  return {};
}

Result<std::vector<VolumeBind>> writeFiles(
    const std::string& dir, const google::protobuf::RepeatedPtrField<pb::File>& files) {
  if (::mkdir(dir.c_str(), 0755) < 0 && errno != EEXIST) return failErrno("mkdir " + dir);
  std::vector<VolumeBind> binds;
  for (int i = 0; i < files.size(); ++i) {
    const std::string path = dir + "/" + std::to_string(i);
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644));
    if (!fd) return failErrno("create " + path);
    const std::string& data = files[i].data();
    for (size_t done = 0; done < data.size();) {
      ssize_t n = ::write(fd.get(), data.data() + done, data.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        return failErrno("write " + path);
      }
      done += static_cast<size_t>(n);
    }
    binds.push_back({path, files[i].destination(), files[i].readonly()});
  }
  return binds;
}

}  // namespace nv::agent
