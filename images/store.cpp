// SPDX-License-Identifier: Apache-2.0
// The image store: directories, the name index, locking, atomic commits, ls/rm/inspect.
#include "images/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "common/syscall.h"
#include "images/digest.h"
#include "images/rootfs.h"

namespace nv::images {
namespace {

using nlohmann::json;

Result<void> makeDir(const std::string& path, mode_t mode) {
  if (::mkdir(path.c_str(), mode) != 0 && errno != EEXIST) {
    return failErrno("mkdir " + path);
  }
  return {};
}

Result<void> fsyncDir(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) {
    return failErrno("open " + dir);
  }
  if (::fsync(fd.get()) != 0) {
    return failErrno("fsync " + dir);
  }
  return {};
}

std::vector<std::string> listDir(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) {
    return {};
  }
  return listDirFd(fd.get());
}

std::string indexPath(const std::string& root) { return root + "/index.json"; }

// name -> manifest digest. A missing index is an empty store.
Result<std::map<std::string, std::string>> readIndex(const std::string& root) {
  std::map<std::string, std::string> out;
  if (::access(indexPath(root).c_str(), F_OK) != 0) {
    return out;
  }
  NV_ASSIGN_OR_RETURN(std::string text, readFileBounded(indexPath(root), 64ull << 20));
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("images") || !j["images"].is_object()) {
    return fail(Errc::kIntegrity, "store index " + indexPath(root) + " is corrupt");
  }
  for (const auto& [name, v] : j["images"].items()) {
    if (!v.is_object() || !v.contains("digest") || !v["digest"].is_string()) {
      return fail(Errc::kIntegrity, "store index entry '" + name + "' is corrupt");
    }
    out[name] = v["digest"].get<std::string>();
  }
  return out;
}

Result<void> writeIndex(const std::string& root, const std::map<std::string, std::string>& idx) {
  json j = json::object();
  j["version"] = 1;
  j["images"] = json::object();
  for (const auto& [name, digest] : idx) {
    j["images"][name] = {{"digest", digest}};
  }
  return writeFileAtomic(indexPath(root), j.dump(2) + "\n");
}

}  // namespace

std::vector<std::string> listDirFd(int dir_fd) {
  std::vector<std::string> out;
  int dup = ::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
  if (dup < 0) {
    return out;
  }
  DIR* d = ::fdopendir(dup);
  if (d == nullptr) {
    ::close(dup);
    return out;
  }
  while (dirent* de = ::readdir(d)) {
    std::string n = de->d_name;
    if (n != "." && n != "..") {
      out.push_back(std::move(n));
    }
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

Result<std::string> readFileBounded(const std::string& path, uint64_t max_bytes) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    return failErrno("open " + path);
  }
  std::string out;
  std::array<char, 1 << 16> buf{};
  for (;;) {
    ssize_t n = retryOnEintr([&] { return ::read(fd.get(), buf.data(), buf.size()); });
    if (n < 0) {
      return failErrno("read " + path);
    }
    if (n == 0) {
      break;
    }
    out.append(buf.data(), static_cast<size_t>(n));
    if (out.size() > max_bytes) {
      return fail(Errc::kTooLarge, path + " is larger than " + std::to_string(max_bytes) + " bytes");
    }
  }
  return out;
}

Result<void> writeFileAtomic(const std::string& path, std::string_view data) {
  std::string tmpl = path + ".tmp-XXXXXX";
  int raw = ::mkstemp(tmpl.data());
  if (raw < 0) {
    return failErrno("create temp file for " + path);
  }
  UniqueFd fd(raw);
  bool ok = false;
  auto cleanup = [&] {
    if (!ok) {
      ::unlink(tmpl.c_str());
    }
  };
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = retryOnEintr([&] { return ::write(fd.get(), data.data() + off, data.size() - off); });
    if (n < 0) {
      auto e = failErrno("write " + tmpl);
      cleanup();
      return e;
    }
    off += static_cast<size_t>(n);
  }
  if (::fchmod(fd.get(), 0644) != 0 || ::fsync(fd.get()) != 0 ||
      ::rename(tmpl.c_str(), path.c_str()) != 0) {
    auto e = failErrno("write " + path);
    cleanup();
    return e;
  }
  ok = true;
  std::string dir = path.substr(0, path.rfind('/'));
  return fsyncDir(dir.empty() ? "/" : dir);
}

Result<Store> Store::open(std::string root) {
  while (root.size() > 1 && root.back() == '/') {
    root.pop_back();
  }
  if (root.empty()) {
    return fail(Errc::kInvalidArgument, "store root is empty");
  }
  // root and rootfs/ are traversable (not listable) so that a hypervisor running as another
  // user (libvirt's QEMU) can open the rootfs images it is given; the rest stays private.
  NV_TRY(makeDir(root, 0711));
  for (const char* sub : {"/blobs", "/blobs/sha256", "/sigs", "/tmp"}) {
    NV_TRY(makeDir(root + sub, 0700));
  }
  NV_TRY(makeDir(root + "/rootfs", 0711));
  return Store(std::move(root));
}

std::string Store::blobPath(std::string_view hex) const {
  return root_ + "/blobs/sha256/" + std::string(hex);
}

Result<StoreLock> Store::lock() const {
  UniqueFd fd(::open((root_ + "/lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) {
    return failErrno("open store lock " + root_ + "/lock");
  }
  if (retryOnEintr([&] { return ::flock(fd.get(), LOCK_EX); }) != 0) {
    return failErrno("lock store " + root_);
  }
  return StoreLock(std::move(fd));
}

Result<std::string> Store::makeStagingDir(std::string_view prefix) const {
  std::string tmpl = tmpDir() + "/" + std::string(prefix) + "-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) {
    return failErrno("create staging directory in " + tmpDir());
  }
  return tmpl;
}

Result<void> Store::commit(const Commit& c) {
  NV_ASSIGN_OR_RETURN(StoreLock held, lock());
  (void)held;
  std::vector<std::string> added;
  auto rollback = [&] {
    for (const auto& p : added) {
      ::unlink(p.c_str());
    }
  };
  for (const auto& [from, to] : c.files) {
    if (::access(to.c_str(), F_OK) == 0) {
      continue;  // content-addressed: same name, same bytes
    }
    // fsync the content before it becomes visible under its final name.
    UniqueFd fd(::open(from.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd || ::fsync(fd.get()) != 0 || ::rename(from.c_str(), to.c_str()) != 0) {
      auto e = failErrno("commit " + to);
      rollback();
      return e;
    }
    added.push_back(to);
  }
  auto idx = readIndex(root_);
  if (!idx) {
    rollback();
    return tl::unexpected(idx.error());
  }
  for (const auto& [name, digest] : c.names) {
    (*idx)[name] = digest;
  }
  if (auto w = writeIndex(root_, *idx); !w) {
    rollback();
    return w;
  }
  for (const auto* dir : {"/blobs/sha256", "/rootfs"}) {
    (void)fsyncDir(root_ + dir);
  }
  return {};
}

Result<ImageRecord> Store::load(const std::string& name, const std::string& digest) const {
  ImageRecord r;
  r.name = name;
  r.digest = digest;
  NV_ASSIGN_OR_RETURN(std::string hex, digestHex(digest));
  NV_ASSIGN_OR_RETURN(std::string mtext, readFileBounded(blobPath(hex), kMaxMetadataBytes));
  NV_ASSIGN_OR_RETURN(r.manifest, parseManifest(mtext));
  NV_ASSIGN_OR_RETURN(std::string chex, digestHex(r.manifest.config.digest));
  NV_ASSIGN_OR_RETURN(std::string ctext, readFileBounded(blobPath(chex), kMaxMetadataBytes));
  NV_ASSIGN_OR_RETURN(r.config, parseConfig(ctext));
  r.size = mtext.size() + r.manifest.config.size;
  for (const auto& l : r.manifest.layers) {
    r.size += l.size;
  }
  return r;
}

Result<std::vector<ImageRecord>> Store::list() const {
  NV_ASSIGN_OR_RETURN(auto idx, readIndex(root_));
  std::vector<ImageRecord> out;
  for (const auto& [name, digest] : idx) {
    NV_ASSIGN_OR_RETURN(ImageRecord r, load(name, digest));
    out.push_back(std::move(r));
  }
  return out;
}

Result<ImageRecord> Store::get(std::string_view name) const {
  NV_ASSIGN_OR_RETURN(auto idx, readIndex(root_));
  if (name.starts_with("sha256:")) {
    for (const auto& [n, d] : idx) {
      if (d == name) {
        return load(n, d);
      }
    }
  } else {
    NV_ASSIGN_OR_RETURN(std::string norm, normalizeName(name));
    for (const std::string& candidate : {norm, "docker.io/library/" + norm, "docker.io/" + norm}) {
      if (auto it = idx.find(candidate); it != idx.end()) {
        return load(it->first, it->second);
      }
    }
  }
  return fail(Errc::kNotFound, "image '" + std::string(name.substr(0, 200)) + "' is not in the store");
}

Result<void> Store::remove(std::string_view name) {
  NV_ASSIGN_OR_RETURN(ImageRecord victim, get(name));
  NV_ASSIGN_OR_RETURN(StoreLock held, lock());
  (void)held;
  NV_ASSIGN_OR_RETURN(auto idx, readIndex(root_));
  idx.erase(victim.name);
  NV_TRY(writeIndex(root_, idx));

  // Garbage-collect: everything still referenced by a remaining name survives.
  std::set<std::string> blobs;
  std::set<std::string> chains;
  for (const auto& [n, d] : idx) {
    NV_ASSIGN_OR_RETURN(ImageRecord r, load(n, d));
    blobs.insert(d.substr(7));
    blobs.insert(r.manifest.config.digest.substr(7));
    for (const auto& l : r.manifest.layers) {
      blobs.insert(l.digest.substr(7));
    }
    chains.insert(chainId(r.config.diff_ids).substr(7));
  }
  for (const auto& f : listDir(root_ + "/blobs/sha256")) {
    if (!blobs.contains(f)) {
      ::unlink((root_ + "/blobs/sha256/" + f).c_str());
    }
  }
  for (const auto& f : listDir(rootfsDir())) {
    // <chain>.erofs and <chain>.limits (the limits its layers were checked under).
    const size_t dot = f.rfind('.');
    if (dot != std::string::npos && !chains.contains(f.substr(0, dot))) {
      ::unlink((rootfsDir() + "/" + f).c_str());
    }
  }
  for (const auto& f : listDir(sigsDir())) {
    if (!blobs.contains(f)) {
      UniqueFd dir(::open(sigsDir().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (dir) {
        (void)removeAt(dir.get(), f);
      }
    }
  }
  return {};
}

Result<std::string> Store::inspect(std::string_view name) const {
  NV_ASSIGN_OR_RETURN(ImageRecord r, get(name));
  json j = json::object();
  j["name"] = r.name;
  j["digest"] = r.digest;
  j["size"] = r.size;
  j["config"] = {{"digest", r.manifest.config.digest},
                 {"architecture", r.config.architecture},
                 {"os", r.config.os},
                 {"created", r.config.created},
                 {"env", r.config.env},
                 {"cmd", r.config.cmd},
                 {"entrypoint", r.config.entrypoint},
                 {"workingDir", r.config.working_dir},
                 {"user", r.config.user}};
  j["layers"] = json::array();
  for (size_t i = 0; i < r.manifest.layers.size(); ++i) {
    const auto& l = r.manifest.layers[i];
    j["layers"].push_back({{"digest", l.digest},
                           {"size", l.size},
                           {"mediaType", l.media_type},
                           {"diffId", i < r.config.diff_ids.size() ? r.config.diff_ids[i] : ""}});
  }
  j["chainId"] = chainId(r.config.diff_ids);
  std::string rootfs = rootfsDir() + "/" + chainId(r.config.diff_ids).substr(7) + ".erofs";
  j["rootfsImage"] = ::access(rootfs.c_str(), F_OK) == 0 ? json(rootfs) : json(nullptr);
  j["signatures"] = listDir(sigsDir() + "/" + r.digest.substr(7)).size();
  return j.dump(2);
}

}  // namespace nv::images
