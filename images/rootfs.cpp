// SPDX-License-Identifier: Apache-2.0
// Flattening layers or snapshot directories into a tree and packing it as EROFS.
#include "images/rootfs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>

#include "common/scope_guard.h"
#include "common/subprocess.h"
#include "common/syscall.h"
#include "images/digest.h"

namespace nv::images {
namespace {

using namespace std::chrono_literals;

std::string firstLine(const std::string& s) {
  std::string l = s.substr(0, s.find('\n'));
  return l.substr(0, 300);
}


void copyMeta(int dst_dir, const std::string& name, const struct stat& st, int fd = -1) {
  if (::geteuid() == 0) {
    (void)::fchownat(dst_dir, name.c_str(), st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW);
  }
  if (!S_ISLNK(st.st_mode)) {
    if (fd >= 0) {
      (void)::fchmod(fd, st.st_mode & 07777);
    } else {
      (void)::fchmodat(dst_dir, name.c_str(), st.st_mode & 07777, 0);
    }
  }
  struct timespec times[2] = {st.st_mtim, st.st_mtim};
  (void)::utimensat(dst_dir, name.c_str(), times, AT_SYMLINK_NOFOLLOW);
}

Result<void> copyFileAt(int src_dir, int dst_dir, const std::string& name, const struct stat& st) {
  UniqueFd in(::openat(src_dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!in) {
    return failErrno("open '" + name + "'");
  }
  UniqueFd out(::openat(dst_dir, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                        0600));
  if (!out) {
    return failErrno("create '" + name + "'");
  }
  auto left = static_cast<uint64_t>(st.st_size);
  while (left > 0) {
    ssize_t n = ::copy_file_range(in.get(), nullptr, out.get(), nullptr, left, 0);
    if (n < 0) {
      return failErrno("copy '" + name + "'");
    }
    if (n == 0) {
      break;
    }
    left -= static_cast<uint64_t>(n);
  }
  if (::geteuid() == 0) {
    (void)::fchown(out.get(), st.st_uid, st.st_gid);
  }
  (void)::fchmod(out.get(), st.st_mode & 07777);
  struct timespec times[2] = {st.st_mtim, st.st_mtim};
  (void)::futimens(out.get(), times);
  return {};
}

bool isOpaque(int dir_fd) {
  std::array<char, 4> v{};
  ssize_t n = ::fgetxattr(dir_fd, "trusted.overlay.opaque", v.data(), v.size());
  return n == 1 && v[0] == 'y';
}

// Copies the overlay layer `src_dir` onto `dst_dir`, applying overlay whiteouts.
Result<void> overlayCopy(int src_dir, int dst_dir, int depth) {
  if (depth > 512) {
    return fail(Errc::kTooLarge, "snapshot directory nesting is deeper than 512");
  }
  for (const auto& name : listDirFd(src_dir)) {
    struct stat st {};
    if (::fstatat(src_dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      return failErrno("stat '" + name + "'");
    }
    if (S_ISCHR(st.st_mode) && st.st_rdev == 0) {
      NV_TRY(removeAt(dst_dir, name));  // overlay whiteout
      continue;
    }
    struct stat dst {};
    bool exists = ::fstatat(dst_dir, name.c_str(), &dst, AT_SYMLINK_NOFOLLOW) == 0;
    if (S_ISDIR(st.st_mode)) {
      UniqueFd src(::openat(src_dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!src) {
        return failErrno("open '" + name + "'");
      }
      if (exists && (!S_ISDIR(dst.st_mode) || isOpaque(src.get()))) {
        NV_TRY(removeAt(dst_dir, name));
        exists = false;
      }
      if (!exists && ::mkdirat(dst_dir, name.c_str(), 0700) != 0) {
        return failErrno("mkdir '" + name + "'");
      }
      UniqueFd out(::openat(dst_dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!out) {
        return failErrno("open '" + name + "'");
      }
      NV_TRY(overlayCopy(src.get(), out.get(), depth + 1));
      copyMeta(dst_dir, name, st, out.get());
      continue;
    }
    if (exists) {
      NV_TRY(removeAt(dst_dir, name));
    }
    if (S_ISREG(st.st_mode)) {
      NV_TRY(copyFileAt(src_dir, dst_dir, name, st));
    } else if (S_ISLNK(st.st_mode)) {
      std::array<char, 4097> target{};
      ssize_t n = ::readlinkat(src_dir, name.c_str(), target.data(), target.size() - 1);
      if (n < 0 || ::symlinkat(target.data(), dst_dir, name.c_str()) != 0) {
        return failErrno("copy symlink '" + name + "'");
      }
      copyMeta(dst_dir, name, st);
    } else {
      if (::mknodat(dst_dir, name.c_str(), st.st_mode, st.st_rdev) != 0) {
        return failErrno("mknod '" + name + "'");
      }
      copyMeta(dst_dir, name, st);
    }
  }
  return {};
}

Result<void> hashTree(int dir_fd, const std::string& prefix, Sha256& h, int depth) {
  if (depth > 512) {
    return fail(Errc::kTooLarge, "snapshot directory nesting is deeper than 512");
  }
  for (const auto& name : listDirFd(dir_fd)) {
    struct stat st {};
    if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      return failErrno("stat '" + prefix + name + "'");
    }
    std::string rec = prefix + name + '\0' + std::to_string(st.st_dev) + ' ' +
                      std::to_string(st.st_ino) + ' ' + std::to_string(st.st_mode) + ' ' +
                      std::to_string(st.st_uid) + ' ' + std::to_string(st.st_gid) + ' ' +
                      std::to_string(st.st_size) + ' ' + std::to_string(st.st_mtim.tv_sec) + '.' +
                      std::to_string(st.st_mtim.tv_nsec) + ' ' + std::to_string(st.st_ctim.tv_sec) +
                      '.' + std::to_string(st.st_ctim.tv_nsec) + '\n';
    h.update(rec);
    if (S_ISDIR(st.st_mode)) {
      UniqueFd sub(::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!sub) {
        return failErrno("open '" + prefix + name + "'");
      }
      NV_TRY(hashTree(sub.get(), prefix + name + "/", h, depth + 1));
    }
  }
  return {};
}

Result<UniqueFd> openDir(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) {
    return failErrno("open directory " + path);
  }
  return fd;
}

Result<void> removeTree(const std::string& path) {
  std::string parent = path.substr(0, path.rfind('/'));
  NV_ASSIGN_OR_RETURN(UniqueFd dir, openDir(parent.empty() ? "/" : parent));
  return removeAt(dir.get(), path.substr(path.rfind('/') + 1));
}

}  // namespace

std::string chainId(const std::vector<std::string>& diff_ids) {
  if (diff_ids.empty()) {
    return digestOf(sha256Hex(""));
  }
  std::string chain = diff_ids[0];
  for (size_t i = 1; i < diff_ids.size(); ++i) {
    chain = digestOf(sha256Hex(chain + " " + diff_ids[i]));
  }
  return chain;
}

Result<void> unpackLayers(const std::string& tree, const Manifest& manifest,
                          const ImageConfig& config,
                          const std::function<std::string(const std::string&)>& blob_path,
                          const LayerLimits& limits, const ProgressFn& progress) {
  if (manifest.layers.size() != config.diff_ids.size()) {
    return fail(Errc::kIntegrity, "image has " + std::to_string(manifest.layers.size()) +
                                      " layers but its config lists " +
                                      std::to_string(config.diff_ids.size()) + " diff_ids");
  }
  NV_ASSIGN_OR_RETURN(UniqueFd root, openDir(tree));
  for (size_t i = 0; i < manifest.layers.size(); ++i) {
    const Descriptor& d = manifest.layers[i];
    std::string what = "layer " + std::to_string(i + 1) + " (" + d.digest.substr(0, 19) + ")";
    NV_ASSIGN_OR_RETURN(Compression comp, layerCompression(d.media_type));
    NV_ASSIGN_OR_RETURN(std::string hex, digestHex(d.digest));
    std::string path = blob_path(hex);
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
      return failErrno("open " + what + " blob " + path);
    }
    ByteProgress bp;
    if (progress) {
      bp = [&](uint64_t done) { progress({"unpack", what, done, d.size}); };
      progress({"unpack", what, 0, d.size});
    }
    auto applied = applyLayer(root.get(), fd.get(), comp, limits, bp);
    if (!applied) {
      return tl::unexpected(applied.error().wrap(what));
    }
    if (digestOf(applied->diff_id_hex) != config.diff_ids[i]) {
      return fail(Errc::kIntegrity, what + ": diff_id mismatch: config says " +
                                        config.diff_ids[i] + ", uncompressed layer is sha256:" +
                                        applied->diff_id_hex);
    }
    if (progress) {
      progress({"unpack", what, d.size, d.size});
    }
  }
  return {};
}

Result<void> buildErofs(const std::string& tree, const std::string& out) {
  NV_ASSIGN_OR_RETURN(RunResult r, runCommand({"mkfs.erofs", "--quiet", out, tree}, 30min));
  if (r.exit_code != 0) {
    return fail(Errc::kInternal, "mkfs.erofs failed (exit " + std::to_string(r.exit_code) +
                                     "): " + firstLine(r.output));
  }
  return {};
}

Result<std::string> rootfsImage(Store& store, const ImageRecord& image, const LayerLimits& limits,
                                const ProgressFn& progress) {
  std::string out = store.rootfsDir() + "/" + chainId(image.config.diff_ids).substr(7) + ".erofs";
  if (::access(out.c_str(), F_OK) == 0) {
    return out;
  }
  NV_ASSIGN_OR_RETURN(std::string staging, store.makeStagingDir("rootfs"));
  auto cleanup = makeScopeGuard([&] { (void)removeTree(staging); });
  std::string tree = staging + "/tree";
  if (::mkdir(tree.c_str(), 0755) != 0) {
    return failErrno("mkdir " + tree);
  }
  NV_TRY(unpackLayers(tree, image.manifest, image.config,
                      [&](const std::string& hex) { return store.blobPath(hex); }, limits,
                      progress));
  if (progress) {
    progress({"rootfs", "mkfs.erofs", 0, 0});
  }
  NV_TRY(buildErofs(tree, staging + "/rootfs.erofs"));
  NV_TRY(store.commit({{{staging + "/rootfs.erofs", out}}, {}}));
  return out;
}

Result<std::string> dirsIdentity(const std::vector<std::string>& lowerdirs,
                                 const std::string& upperdir) {
  Sha256 h;
  std::vector<std::string> dirs(lowerdirs.rbegin(), lowerdirs.rend());
  if (!upperdir.empty()) {
    dirs.push_back(upperdir);
  }
  if (dirs.empty()) {
    return fail(Errc::kInvalidArgument, "no snapshot directories given");
  }
  for (const auto& d : dirs) {
    NV_ASSIGN_OR_RETURN(UniqueFd fd, openDir(d));
    h.update("dir " + d + '\0');
    NV_TRY(hashTree(fd.get(), "", h, 0));
  }
  return h.hex();
}

Result<std::string> rootfsImageFromDirs(Store& store, const std::vector<std::string>& lowerdirs,
                                        const std::string& upperdir) {
  NV_ASSIGN_OR_RETURN(std::string key, dirsIdentity(lowerdirs, upperdir));
  std::string dir = store.rootfsDir() + "/snapshots";
  if (::mkdir(dir.c_str(), 0711) != 0 && errno != EEXIST) {
    return failErrno("mkdir " + dir);
  }
  std::string out = dir + "/" + key + ".erofs";
  if (::access(out.c_str(), F_OK) == 0) {
    return out;
  }
  NV_ASSIGN_OR_RETURN(std::string staging, store.makeStagingDir("snapshot"));
  auto cleanup = makeScopeGuard([&] { (void)removeTree(staging); });
  std::string tree = staging + "/tree";
  if (::mkdir(tree.c_str(), 0755) != 0) {
    return failErrno("mkdir " + tree);
  }
  NV_ASSIGN_OR_RETURN(UniqueFd dst, openDir(tree));
  std::vector<std::string> dirs(lowerdirs.rbegin(), lowerdirs.rend());
  if (!upperdir.empty()) {
    dirs.push_back(upperdir);
  }
  for (const auto& d : dirs) {
    NV_ASSIGN_OR_RETURN(UniqueFd src, openDir(d));
    auto copied = overlayCopy(src.get(), dst.get(), 0);
    if (!copied) {
      return tl::unexpected(copied.error().wrap("flatten " + d));
    }
  }
  NV_TRY(buildErofs(tree, staging + "/rootfs.erofs"));
  NV_TRY(store.commit({{{staging + "/rootfs.erofs", out}}, {}}));
  return out;
}

Result<void> makeScratchDisk(const std::string& path, uint64_t size_bytes) {
  if (size_bytes < (1ull << 20)) {
    return fail(Errc::kInvalidArgument, "scratch disk size must be at least 1 MiB");
  }
  {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!fd) {
      return failErrno("create scratch disk " + path);
    }
    if (::ftruncate(fd.get(), static_cast<off_t>(size_bytes)) != 0) {
      auto e = failErrno("size scratch disk " + path);
      ::unlink(path.c_str());
      return e;
    }
  }
  auto r = runCommand({"mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=1", path}, 5min);
  if (!r || r->exit_code != 0) {
    ::unlink(path.c_str());
    if (!r) {
      return tl::unexpected(r.error().wrap("mkfs.ext4"));
    }
    return fail(Errc::kInternal, "mkfs.ext4 failed: " + firstLine(r->output));
  }
  return {};
}

}  // namespace nv::images
