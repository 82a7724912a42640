// SPDX-License-Identifier: Apache-2.0
// The layer applier: libarchive decompression, a hashing tee for the diff_id, and a rooted,
// symlink-safe writer for tar entries with OCI whiteout handling.
#include "images/layer.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <array>
#include <deque>
#include <memory>
#include <optional>
#include <unordered_set>
#include <vector>

#include "common/syscall.h"
#include "common/unique_fd.h"
#include "images/digest.h"

namespace nv::images {
namespace {

constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kOpaqueMarker = ".wh..wh..opq";
constexpr int kMaxSymlinkHops = 40;
constexpr size_t kMaxPathBytes = 4096;
constexpr size_t kMaxNameBytes = 255;

struct ArchiveDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};
using ArchivePtr = std::unique_ptr<archive, ArchiveDeleter>;

std::string archiveError(archive* a) {
  const char* s = archive_error_string(a);
  return s != nullptr ? s : "unknown libarchive error";
}

// The decompressed byte stream of a layer: libarchive filters + the "raw" format, hashed as it
// is read, with the size and ratio limits enforced on every read.
struct Stream {
  ArchivePtr outer;
  Sha256 hash;
  uint64_t total = 0;
  bool empty = false;
  const LayerLimits* limits = nullptr;
  const ByteProgress* progress = nullptr;
  uint64_t next_progress = 1 << 20;
  std::optional<Error> error;
  std::array<char, 1 << 16> buf{};

  // Reads the next chunk; 0 at end, -1 on error (error set).
  ssize_t read() {
    if (empty) {
      return 0;
    }
    la_ssize_t n = archive_read_data(outer.get(), buf.data(), buf.size());
    if (n < 0) {
      error = Error(Errc::kIntegrity,
                    "layer is truncated or corrupt (decompression): " + archiveError(outer.get()));
      return -1;
    }
    auto un = static_cast<uint64_t>(n);
    hash.update(buf.data(), un);
    total += un;
    if (total > limits->max_total_bytes) {
      error = Error(Errc::kTooLarge, "layer uncompressed size exceeds the limit of " +
                                         std::to_string(limits->max_total_bytes) +
                                         " bytes (zip bomb?)");
      return -1;
    }
    auto compressed = static_cast<uint64_t>(std::max<la_int64_t>(
        archive_filter_bytes(outer.get(), -1), 1));
    if (total > limits->ratio_floor && total / compressed > limits->max_ratio) {
      error = Error(Errc::kTooLarge, "layer compression ratio exceeds " +
                                         std::to_string(limits->max_ratio) + ":1 (zip bomb?)");
      return -1;
    }
    if (progress != nullptr && *progress && compressed >= next_progress) {
      (*progress)(compressed);
      next_progress = compressed + (1 << 20);
    }
    return static_cast<ssize_t>(n);
  }

  // Hashes whatever follows the end of the tar (padding), under the same limits.
  Result<void> drain() {
    for (;;) {
      ssize_t n = read();
      if (n < 0) {
        return tl::unexpected(*error);
      }
      if (n == 0) {
        return {};
      }
    }
  }
};

Result<std::unique_ptr<Stream>> openStream(Compression compression, const LayerLimits& limits,
                                           const ByteProgress* progress, int fd,
                                           std::span<const uint8_t> mem) {
  auto s = std::make_unique<Stream>();
  s->limits = &limits;
  s->progress = progress;
  s->outer.reset(archive_read_new());
  archive* a = s->outer.get();
  if (compression == Compression::kGzip) {
    archive_read_support_filter_gzip(a);
  } else if (compression == Compression::kZstd) {
    archive_read_support_filter_zstd(a);
  }
  archive_read_support_format_raw(a);
  archive_read_support_format_empty(a);
  int rc = fd >= 0 ? archive_read_open_fd(a, fd, 1 << 16)
                   : archive_read_open_memory(a, mem.data(), mem.size());
  if (rc != ARCHIVE_OK) {
    return fail(Errc::kIntegrity, "layer cannot be opened: " + archiveError(a));
  }
  archive_entry* entry = nullptr;
  rc = archive_read_next_header(a, &entry);
  if (rc == ARCHIVE_EOF) {
    s->empty = true;
  } else if (rc != ARCHIVE_OK) {
    return fail(Errc::kIntegrity,
                "layer is not a valid compressed stream: " + archiveError(a));
  } else if (compression != Compression::kNone && archive_filter_count(a) < 2) {
    return fail(Errc::kIntegrity, "layer is not compressed as its media type says");
  }
  return s;
}

la_ssize_t tarReadCallback(archive* /*a*/, void* ctx, const void** out) {
  auto* s = static_cast<Stream*>(ctx);
  ssize_t n = s->read();
  *out = s->buf.data();
  return n;
}

// Splits and checks an entry path. Refuses absolute paths and `..`; drops "." and empties.
Result<std::vector<std::string>> splitEntryPath(std::string_view path, std::string_view what) {
  if (path.size() > kMaxPathBytes) {
    return fail(Errc::kPermission, std::string(what) + " path is longer than 4096 bytes");
  }
  if (!path.empty() && path.front() == '/') {
    return fail(Errc::kPermission,
                std::string(what) + " has an absolute path '" + std::string(path.substr(0, 200)) + "'");
  }
  std::vector<std::string> comps;
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) {
      j = path.size();
    }
    std::string_view c = path.substr(i, j - i);
    if (c == "..") {
      return fail(Errc::kPermission, std::string(what) + " path '" +
                                         std::string(path.substr(0, 200)) +
                                         "' contains '..' (path traversal)");
    }
    if (c.size() > kMaxNameBytes) {
      return fail(Errc::kPermission, std::string(what) + " has a name longer than 255 bytes");
    }
    if (!c.empty() && c != ".") {
      comps.emplace_back(c);
    }
    i = j + 1;
  }
  return comps;
}

std::string joinPath(const std::vector<std::string>& comps, size_t n) {
  std::string s;
  for (size_t i = 0; i < n && i < comps.size(); ++i) {
    if (i > 0) {
      s += '/';
    }
    s += comps[i];
  }
  return s;
}

// Opens the directory named by `comps` under `root_fd`, creating missing directories when
// `create`, following symlinks only as if the root were "/" and refusing any that climb out.
Result<UniqueFd> openDirIn(int root_fd, const std::vector<std::string>& comps, bool create,
                           std::string_view escape_kind, std::string_view entry_path) {
  std::vector<UniqueFd> stack;
  std::deque<std::string> todo(comps.begin(), comps.end());
  int hops = 0;
  while (!todo.empty()) {
    std::string c = std::move(todo.front());
    todo.pop_front();
    if (c.empty() || c == ".") {
      continue;
    }
    if (c == "..") {
      if (stack.empty()) {
        return fail(Errc::kPermission, std::string(escape_kind) + ": '" +
                                           std::string(entry_path.substr(0, 200)) +
                                           "' resolves outside the root through a symlink");
      }
      stack.pop_back();
      continue;
    }
    int cur = stack.empty() ? root_fd : stack.back().get();
    struct stat st {};
    if (::fstatat(cur, c.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno != ENOENT || !create) {
        return failErrno("stat '" + c + "' in layer path '" +
                         std::string(entry_path.substr(0, 200)) + "'");
      }
      if (::mkdirat(cur, c.c_str(), 0755) != 0) {
        return failErrno("mkdir '" + c + "'");
      }
    } else if (S_ISLNK(st.st_mode)) {
      if (++hops > kMaxSymlinkHops) {
        return fail(Errc::kPermission, std::string(escape_kind) + ": too many symlinks in '" +
                                           std::string(entry_path.substr(0, 200)) + "'");
      }
      std::array<char, kMaxPathBytes + 1> target{};
      ssize_t n = ::readlinkat(cur, c.c_str(), target.data(), kMaxPathBytes);
      if (n < 0) {
        return failErrno("readlink '" + c + "'");
      }
      std::string_view t(target.data(), static_cast<size_t>(n));
      if (!t.empty() && t.front() == '/') {
        stack.clear();
      }
      std::vector<std::string> parts;
      size_t i = 0;
      while (i <= t.size()) {
        size_t j = t.find('/', i);
        if (j == std::string_view::npos) {
          j = t.size();
        }
        parts.emplace_back(t.substr(i, j - i));
        i = j + 1;
      }
      todo.insert(todo.begin(), parts.begin(), parts.end());
      continue;
    } else if (!S_ISDIR(st.st_mode)) {
      return fail(Errc::kPermission, "layer path '" + std::string(entry_path.substr(0, 200)) +
                                         "' goes through '" + c + "', which is not a directory");
    }
    int fd = ::openat(cur, c.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      return failErrno("open directory '" + c + "'");
    }
    stack.emplace_back(fd);
  }
  if (stack.empty()) {
    int fd = ::fcntl(root_fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
      return failErrno("dup root fd");
    }
    return UniqueFd(fd);
  }
  return std::move(stack.back());
}

struct DeferredDir {
  std::vector<std::string> comps;
  mode_t mode;
  struct timespec mtime;
};

class Applier {
 public:
  Applier(int root_fd, const LayerLimits& limits) : root_fd_(root_fd), limits_(limits) {}

  Result<void> apply(archive* tar, LayerResult& result) {
    archive_entry* entry = nullptr;
    for (;;) {
      int rc = archive_read_next_header(tar, &entry);
      if (rc == ARCHIVE_EOF) {
        break;
      }
      if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
        return fail(Errc::kIntegrity, "layer is truncated or not a tar archive: " +
                                          archiveError(tar));
      }
      if (++result.entries > limits_.max_entries) {
        return fail(Errc::kTooLarge, "layer has more than " +
                                         std::to_string(limits_.max_entries) +
                                         " entries (zip bomb?)");
      }
      NV_TRY(applyEntry(tar, entry, result));
    }
    return finishDirs();
  }

 private:
  Result<void> applyEntry(archive* tar, archive_entry* e, LayerResult& result) {
    const char* raw = archive_entry_pathname(e);
    if (raw == nullptr) {
      return fail(Errc::kPermission, "layer entry has no path name");
    }
    std::string path(raw);
    NV_ASSIGN_OR_RETURN(std::vector<std::string> comps, splitEntryPath(path, "layer entry"));
    if (comps.empty()) {
      return {};  // the root itself ("./")
    }
    std::string name = comps.back();
    std::vector<std::string> parent(comps.begin(), comps.end() - 1);
    std::string key = joinPath(comps, comps.size());

    if (name.starts_with(kWhiteoutPrefix)) {
      NV_ASSIGN_OR_RETURN(UniqueFd dir, openDirIn(root_fd_, parent, true, "symlink escape", path));
      if (name == kOpaqueMarker) {
        return clearOpaque(dir.get(), joinPath(parent, parent.size()));
      }
      std::string victim = name.substr(kWhiteoutPrefix.size());
      if (victim.empty() || victim == "." || victim == ".." || victim.starts_with(kWhiteoutPrefix)) {
        return fail(Errc::kPermission, "layer has an invalid whiteout '" + path.substr(0, 200) + "'");
      }
      return removeAt(dir.get(), victim);
    }

    NV_ASSIGN_OR_RETURN(UniqueFd dir, openDirIn(root_fd_, parent, true, "symlink escape", path));
    written_.insert(key);

    auto perm = static_cast<mode_t>(archive_entry_perm(e) & 07777);
    if ((perm & (S_ISUID | S_ISGID)) != 0 && !limits_.allow_setuid) {
      perm &= static_cast<mode_t>(~(S_ISUID | S_ISGID));
      ++result.stripped_setuid;
    }
    auto uid = static_cast<uid_t>(archive_entry_uid(e));
    auto gid = static_cast<gid_t>(archive_entry_gid(e));
    struct timespec times[2];
    times[0].tv_sec = archive_entry_mtime(e);
    times[0].tv_nsec = archive_entry_mtime_nsec(e);
    times[1] = times[0];

    if (const char* link = archive_entry_hardlink(e); link != nullptr) {
      return hardlink(dir.get(), name, link, path);
    }

    const mode_t type = archive_entry_filetype(e);
    struct stat existing {};
    bool exists = ::fstatat(dir.get(), name.c_str(), &existing, AT_SYMLINK_NOFOLLOW) == 0;
    if (exists && !(type == AE_IFDIR && S_ISDIR(existing.st_mode))) {
      NV_TRY(removeAt(dir.get(), name));
    }
    const char* n = name.c_str();
    switch (type) {
      case AE_IFREG:
        return regularFile(tar, e, dir.get(), name, perm, uid, gid, times);
      case AE_IFDIR: {
        if (!(exists && S_ISDIR(existing.st_mode)) && ::mkdirat(dir.get(), n, 0700) != 0) {
          return failErrno("mkdir '" + path.substr(0, 200) + "'");
        }
        NV_TRY(setOwner(dir.get(), name, uid, gid));
        mode_t now = root_ ? perm : (perm | S_IRWXU);
        if (::fchmodat(dir.get(), n, now, 0) != 0) {
          return failErrno("chmod '" + path.substr(0, 200) + "'");
        }
        deferred_.push_back({comps, perm, times[0]});
        return {};
      }
      case AE_IFLNK: {
        const char* target = archive_entry_symlink(e);
        if (target == nullptr || *target == '\0') {
          return fail(Errc::kPermission, "symlink '" + path.substr(0, 200) + "' has no target");
        }
        if (::symlinkat(target, dir.get(), n) != 0) {
          return failErrno("symlink '" + path.substr(0, 200) + "'");
        }
        NV_TRY(setOwner(dir.get(), name, uid, gid));
        ::utimensat(dir.get(), n, times, AT_SYMLINK_NOFOLLOW);
        return {};
      }
      case AE_IFIFO:
        if (!limits_.allow_fifos) {
          return fail(Errc::kPermission, "layer contains a FIFO '" + path.substr(0, 200) +
                                             "' and the policy does not allow FIFOs");
        }
        return special(dir.get(), name, S_IFIFO | perm, 0, uid, gid, times);
      case AE_IFCHR:
      case AE_IFBLK:
        if (!limits_.allow_devices) {
          return fail(Errc::kPermission, "layer contains a device node '" +
                                             path.substr(0, 200) + "'");
        }
        return special(dir.get(), name, type | perm, archive_entry_rdev(e), uid, gid, times);
      default:
        return fail(Errc::kPermission, "layer entry '" + path.substr(0, 200) +
                                           "' has an unsupported file type (socket?)");
    }
  }

  Result<void> setOwner(int dir_fd, const std::string& name, uid_t uid, gid_t gid) {
    if (root_ && ::fchownat(dir_fd, name.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW) != 0) {
      return failErrno("chown '" + name + "'");
    }
    return {};
  }

  Result<void> regularFile(archive* tar, archive_entry* e, int dir_fd, const std::string& name,
                           mode_t perm, uid_t uid, gid_t gid, const struct timespec* times) {
    la_int64_t size = archive_entry_size_is_set(e) != 0 ? archive_entry_size(e) : 0;
    if (size < 0 || static_cast<uint64_t>(size) > limits_.max_file_bytes) {
      return fail(Errc::kTooLarge, "layer file '" + name + "' is larger than the limit of " +
                                       std::to_string(limits_.max_file_bytes) + " bytes");
    }
    UniqueFd fd(::openat(dir_fd, name.c_str(),
                         O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd) {
      return failErrno("create '" + name + "'");
    }
    for (;;) {
      const void* buf = nullptr;
      size_t len = 0;
      la_int64_t offset = 0;
      int rc = archive_read_data_block(tar, &buf, &len, &offset);
      if (rc == ARCHIVE_EOF) {
        break;
      }
      if (rc != ARCHIVE_OK) {
        return fail(Errc::kIntegrity, "layer is truncated or corrupt in '" + name + "': " +
                                          archiveError(tar));
      }
      if (offset < 0 || static_cast<uint64_t>(offset) + len > limits_.max_file_bytes) {
        return fail(Errc::kTooLarge, "layer file '" + name + "' is larger than the limit");
      }
      const char* p = static_cast<const char*>(buf);
      while (len > 0) {
        ssize_t w = retryOnEintr([&] { return ::pwrite(fd.get(), p, len, offset); });
        if (w < 0) {
          return failErrno("write '" + name + "'");
        }
        p += w;
        len -= static_cast<size_t>(w);
        offset += w;
      }
    }
    if (::ftruncate(fd.get(), size) != 0) {
      return failErrno("truncate '" + name + "'");
    }
    if (root_ && ::fchown(fd.get(), uid, gid) != 0) {
      return failErrno("chown '" + name + "'");
    }
    if (::fchmod(fd.get(), perm) != 0) {
      return failErrno("chmod '" + name + "'");
    }
    ::futimens(fd.get(), times);
    return {};
  }

  Result<void> special(int dir_fd, const std::string& name, mode_t mode, dev_t dev, uid_t uid,
                       gid_t gid, const struct timespec* times) {
    if (::mknodat(dir_fd, name.c_str(), mode, dev) != 0) {
      return failErrno("mknod '" + name + "'");
    }
    NV_TRY(setOwner(dir_fd, name, uid, gid));
    ::utimensat(dir_fd, name.c_str(), times, AT_SYMLINK_NOFOLLOW);
    return {};
  }

  Result<void> hardlink(int dir_fd, const std::string& name, const char* target,
                        const std::string& path) {
    auto tcomps = splitEntryPath(target, "hardlink target");
    if (!tcomps) {
      return fail(Errc::kPermission, "hardlink escape: '" + path.substr(0, 200) +
                                         "' links to '" + std::string(target).substr(0, 200) +
                                         "' outside the root");
    }
    if (tcomps->empty()) {
      return fail(Errc::kPermission, "hardlink '" + path.substr(0, 200) + "' links to the root");
    }
    std::string tname = tcomps->back();
    tcomps->pop_back();
    NV_ASSIGN_OR_RETURN(UniqueFd tdir,
                        openDirIn(root_fd_, *tcomps, false, "hardlink escape", target));
    struct stat st {};
    if (::fstatat(tdir.get(), tname.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      return fail(Errc::kPermission, "hardlink '" + path.substr(0, 200) + "' target '" +
                                         std::string(target).substr(0, 200) + "' does not exist");
    }
    if (S_ISDIR(st.st_mode)) {
      return fail(Errc::kPermission, "hardlink '" + path.substr(0, 200) + "' targets a directory");
    }
    NV_TRY(removeAt(dir_fd, name));
    if (::linkat(tdir.get(), tname.c_str(), dir_fd, name.c_str(), 0) != 0) {
      return failErrno("link '" + path.substr(0, 200) + "'");
    }
    return {};
  }

  // Removes the children of an opaque directory that lower layers created.
  Result<void> clearOpaque(int dir_fd, const std::string& dir_key) {
    int dup = ::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
    if (dup < 0) {
      return failErrno("dup");
    }
    DIR* d = ::fdopendir(dup);
    if (d == nullptr) {
      ::close(dup);
      return failErrno("opendir for opaque whiteout");
    }
    std::vector<std::string> victims;
    while (dirent* de = ::readdir(d)) {
      std::string n = de->d_name;
      if (n == "." || n == "..") {
        continue;
      }
      std::string key = dir_key.empty() ? n : dir_key + "/" + n;
      if (!written_.contains(key)) {
        victims.push_back(n);
      }
    }
    ::closedir(d);
    for (const auto& v : victims) {
      NV_TRY(removeAt(dir_fd, v));
    }
    return {};
  }

  // Directory modes (non-root) and mtimes are set last: creating children changes them.
  Result<void> finishDirs() {
    for (auto it = deferred_.rbegin(); it != deferred_.rend(); ++it) {
      std::vector<std::string> parent(it->comps.begin(), it->comps.end() - 1);
      auto dir = openDirIn(root_fd_, parent, false, "symlink escape", "");
      if (!dir) {
        continue;  // removed by a later whiteout
      }
      const std::string& n = it->comps.back();
      struct stat st {};
      if (::fstatat(dir->get(), n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode)) {
        continue;
      }
      if (!root_) {
        ::fchmodat(dir->get(), n.c_str(), it->mode, 0);
      }
      struct timespec times[2] = {it->mtime, it->mtime};
      ::utimensat(dir->get(), n.c_str(), times, AT_SYMLINK_NOFOLLOW);
    }
    return {};
  }

  int root_fd_;
  const LayerLimits& limits_;
  bool root_ = ::geteuid() == 0;
  std::unordered_set<std::string> written_;
  std::vector<DeferredDir> deferred_;
};

Result<LayerResult> run(int root_fd, Compression compression, const LayerLimits& limits,
                        const ByteProgress* progress, int fd, std::span<const uint8_t> mem,
                        bool extract) {
  NV_ASSIGN_OR_RETURN(auto stream, openStream(compression, limits, progress, fd, mem));
  LayerResult result;
  if (!extract) {
    NV_TRY(stream->drain());
  } else if (!stream->empty) {
    ArchivePtr tar(archive_read_new());
    archive_read_support_format_tar(tar.get());
    if (archive_read_open(tar.get(), stream.get(), nullptr, tarReadCallback, nullptr) !=
        ARCHIVE_OK) {
      if (stream->error) {
        return tl::unexpected(*stream->error);
      }
      return fail(Errc::kIntegrity, "layer is not a tar archive: " + archiveError(tar.get()));
    }
    Applier applier(root_fd, limits);
    auto applied = applier.apply(tar.get(), result);
    if (stream->error) {
      return tl::unexpected(*stream->error);  // the root cause, not libarchive's echo of it
    }
    NV_TRY(applied);
    NV_TRY(stream->drain());
  }
  result.uncompressed_bytes = stream->total;
  result.diff_id_hex = stream->hash.hex();
  return result;
}

}  // namespace

Result<void> removeAt(int dir_fd, const std::string& name) {
  struct stat st {};
  if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) {
      return {};
    }
    return failErrno("stat '" + name + "'");
  }
  if (S_ISDIR(st.st_mode)) {
    int fd = ::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      return failErrno("open '" + name + "'");
    }
    DIR* d = ::fdopendir(fd);
    if (d == nullptr) {
      ::close(fd);
      return failErrno("opendir '" + name + "'");
    }
    std::vector<std::string> children;
    while (dirent* de = ::readdir(d)) {
      std::string n = de->d_name;
      if (n != "." && n != "..") {
        children.push_back(std::move(n));
      }
    }
    Result<void> r;
    for (const auto& c : children) {
      r = removeAt(::dirfd(d), c);
      if (!r) {
        break;
      }
    }
    ::closedir(d);
    NV_TRY(r);
    if (::unlinkat(dir_fd, name.c_str(), AT_REMOVEDIR) != 0) {
      return failErrno("rmdir '" + name + "'");
    }
    return {};
  }
  if (::unlinkat(dir_fd, name.c_str(), 0) != 0 && errno != ENOENT) {
    return failErrno("unlink '" + name + "'");
  }
  return {};
}

Result<LayerResult> applyLayer(int root_fd, int layer_fd, Compression compression,
                               const LayerLimits& limits, const ByteProgress& progress) {
  return run(root_fd, compression, limits, &progress, layer_fd, {}, true);
}

Result<LayerResult> applyLayerBuffer(int root_fd, std::span<const uint8_t> data,
                                     Compression compression, const LayerLimits& limits) {
  return run(root_fd, compression, limits, nullptr, -1, data, true);
}

Result<LayerResult> hashLayer(int layer_fd, Compression compression, const LayerLimits& limits) {
  return run(-1, compression, limits, nullptr, layer_fd, {}, false);
}

}  // namespace nv::images
