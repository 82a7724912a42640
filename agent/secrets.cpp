// SPDX-License-Identifier: Apache-2.0
#include "agent/secrets.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <vector>

#include "agent/passwd.h"
#include "common/syscall.h"
#include "common/unique_fd.h"

namespace nv::agent {
namespace {

bool validName(const std::string& name) {
  if (name.empty() || name.size() > 255 || name == "." || name == "..") return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// Reads `path` (relative to `root`) with every symlink resolved inside `root` (openat2
// RESOLVE_IN_ROOT), at most 1 MiB; a missing file reads as empty.
Result<std::string> readInRoot(const std::string& root, const std::string& path) {
  UniqueFd dir(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dir) return failErrno("open " + root);
  open_how how{};
  how.flags = O_RDONLY | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  UniqueFd fd(static_cast<int>(::syscall(SYS_openat2, dir.get(), path.c_str(), &how, sizeof how)));
  if (!fd) {
    if (errno == ENOENT) return std::string();
    return failErrno("open " + path + " in the container");
  }
  std::string out;
  char buffer[4096];
  for (;;) {
    const ssize_t n = retryOnEintr([&] { return ::read(fd.get(), buffer, sizeof buffer); });
    if (n < 0) return failErrno("read " + path + " in the container");
    if (n == 0) break;
    out.append(buffer, static_cast<size_t>(n));
    if (out.size() > (1u << 20)) return fail(Errc::kTooLarge, path + " in the container is over 1 MiB");
  }
  return out;
}

// Adds a secret's size to the request's running total; either over its bound is an error.
Result<void> addSize(const pb::Secret& secret, size_t& total) {
  if (secret.data().size() > kMaxSecretBytes) {
    return fail(Errc::kTooLarge, "secret '" + secret.name() + "' is over 1 MiB");
  }
  total += secret.data().size();
  if (total > kMaxSecretsTotalBytes) return fail(Errc::kTooLarge, "secrets total over 3 MiB");
  return {};
}

}  // namespace

Result<void> validateSecrets(const google::protobuf::RepeatedPtrField<pb::Secret>& secrets) {
  if (static_cast<size_t>(secrets.size()) > kMaxSecrets) {
    return fail(Errc::kTooLarge, "more than " + std::to_string(kMaxSecrets) + " secrets");
  }
  std::set<std::string> names;
  size_t total = 0;
  for (const auto& secret : secrets) {
    if (!validName(secret.name())) {
      return fail(Errc::kInvalidArgument, "secret name '" + secret.name() +
                                              "' must be 1-255 characters of [A-Za-z0-9._-]");
    }
    if (!names.insert(secret.name()).second) {
      return fail(Errc::kInvalidArgument, "secret '" + secret.name() + "' given twice");
    }
    NV_TRY(addSize(secret, total));
  }
  return {};
}

Result<void> validateSecretVolumes(
    const google::protobuf::RepeatedPtrField<pb::SecretVolume>& volumes,
    const google::protobuf::RepeatedPtrField<pb::Secret>& secrets) {
  if (static_cast<size_t>(volumes.size()) > kMaxSecretVolumes) {
    return fail(Errc::kTooLarge, "more than " + std::to_string(kMaxSecretVolumes) +
                                     " secret volumes");
  }
  size_t total = 0;
  for (const auto& secret : secrets) total += secret.data().size();
  std::set<std::string> destinations;
  for (const auto& volume : volumes) {
    const std::string& dest = volume.destination();
    if (!isCleanAbsolutePath(dest) || dest == "/" || dest.back() == '/') {
      return fail(Errc::kInvalidArgument,
                  "secret volume destination '" + dest + "' is not a clean absolute path");
    }
    if (!destinations.insert(dest).second) {
      return fail(Errc::kInvalidArgument, "secret volume " + dest + " given twice");
    }
    if (static_cast<size_t>(volume.files_size()) > kMaxSecrets) {
      return fail(Errc::kTooLarge, "secret volume " + dest + " has more than " +
                                       std::to_string(kMaxSecrets) + " files");
    }
    std::set<std::string> files;
    std::set<std::string> dirs;
    for (const auto& file : volume.files()) {
      const std::string& path = file.name();
      size_t parts = 0;
      for (size_t begin = 0; begin <= path.size(); ++parts) {
        const size_t slash = std::min(path.find('/', begin), path.size());
        if (!validName(path.substr(begin, slash - begin)) || parts == kMaxSecretDepth) {
          return fail(Errc::kInvalidArgument,
                      "secret volume " + dest + ": file '" + path + "' must be a relative path of "
                      "at most 8 names of 1-255 characters of [A-Za-z0-9._-]");
        }
        if (slash < path.size()) dirs.insert(path.substr(0, slash));
        begin = slash + 1;
      }
      if (!files.insert(path).second) {
        return fail(Errc::kInvalidArgument, "secret volume " + dest + ": '" + path + "' given twice");
      }
      NV_TRY(addSize(file, total));
    }
    for (const auto& dir : dirs) {
      if (files.count(dir) != 0) {
        return fail(Errc::kInvalidArgument,
                    "secret volume " + dest + ": '" + dir + "' is both a file and a directory");
      }
    }
  }
  return {};
}

Result<std::pair<uint32_t, uint32_t>> secretsOwner(const std::string& rootfs,
                                                   const UserSpec& user) {
  if (user.username.empty()) return std::pair{user.uid, user.gid};
  NV_ASSIGN_OR_RETURN(std::string passwd, readInRoot(rootfs, "/etc/passwd"));
  NV_ASSIGN_OR_RETURN(std::string group, readInRoot(rootfs, "/etc/group"));
  NV_ASSIGN_OR_RETURN(auto resolved, resolveUser(user.username, passwd, group));
  return std::pair{resolved.uid, resolved.gid};
}

Result<void> writeSecrets(const std::string& dir,
                          const google::protobuf::RepeatedPtrField<pb::Secret>& secrets,
                          uint32_t uid, uint32_t gid) {
  size_t total = 0;
  for (const auto& secret : secrets) total += secret.data().size();
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return failErrno("mkdir " + dir);
  // Sized to the secrets (+ room for inodes); nothing else can be written there.
  const std::string options = "mode=0700,size=" + std::to_string(total + (64u << 10));
  if (::mount("secrets", dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              options.c_str()) != 0) {
    return failErrno("mount the secrets tmpfs");
  }
  auto undo = [&](const Error& e) {
    ::umount2(dir.c_str(), MNT_DETACH);
    return tl::unexpected(e);
  };
  std::vector<std::string> subdirs;
  for (const auto& secret : secrets) {
    // Validated: names are relative paths of file names; make their directories.
    for (size_t slash = secret.name().find('/'); slash != std::string::npos;
         slash = secret.name().find('/', slash + 1)) {
      const std::string sub = dir + "/" + secret.name().substr(0, slash);
      if (::mkdir(sub.c_str(), 0700) == 0) {
        subdirs.push_back(sub);
      } else if (errno != EEXIST) {
        return undo(Error::lastErrno("mkdir for secret " + secret.name()));
      }
    }
    const std::string path = dir + "/" + secret.name();
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0400));
    if (!fd) return undo(Error::lastErrno("create secret " + secret.name()));
    const std::string& data = secret.data();
    for (size_t done = 0; done < data.size();) {
      const ssize_t n =
          retryOnEintr([&] { return ::write(fd.get(), data.data() + done, data.size() - done); });
      if (n <= 0) return undo(Error::lastErrno("write secret " + secret.name()));
      done += static_cast<size_t>(n);
    }
    const mode_t mode = secret.mode() == 0 ? 0400 : (secret.mode() & 0444);
    if (::fchown(fd.get(), uid, gid) != 0 || ::fchmod(fd.get(), mode) != 0) {
      return undo(Error::lastErrno("chown secret " + secret.name()));
    }
  }
  subdirs.push_back(dir);
  for (const auto& sub : subdirs) {
    if (::chown(sub.c_str(), uid, gid) != 0 || ::chmod(sub.c_str(), 0500) != 0) {
      return undo(Error::lastErrno("chown " + sub));
    }
  }
  return {};
}

}  // namespace nv::agent
