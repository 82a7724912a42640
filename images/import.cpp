// SPDX-License-Identifier: Apache-2.0
// Store::import: reads an OCI layout (dir or tar) or a `docker save` archive, verifies every
// blob, unpacks the layers into a staging tree (which checks diff_ids and hostile entries),
// builds the EROFS rootfs, and commits everything at once.
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <map>
#include <memory>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/scope_guard.h"
#include "common/syscall.h"
#include "images/digest.h"
#include "images/rootfs.h"
#include "images/store.h"

namespace nv::images {
namespace {

using nlohmann::json;

constexpr std::string_view kRefName = "org.opencontainers.image.ref.name";
constexpr uint64_t kMaxArchiveEntries = 100'000;

struct Staged {
  std::string path;
  uint64_t size = 0;
  std::string hex;
};

// Copies `in_fd` into a new file `out`, hashing, refusing more than `max` bytes.
Result<Staged> copyHashing(int in_fd, const std::string& out, uint64_t max, std::string_view what,
                           archive* a = nullptr) {
  UniqueFd fd(::open(out.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd) {
    return failErrno("create " + out);
  }
  Staged s{out, 0, {}};
  Sha256 h;
  std::array<char, 1 << 16> buf{};
  for (;;) {
    ssize_t n = a != nullptr
                    ? static_cast<ssize_t>(archive_read_data(a, buf.data(), buf.size()))
                    : retryOnEintr([&] { return ::read(in_fd, buf.data(), buf.size()); });
    if (n < 0) {
      if (a != nullptr) {
        const char* e = archive_error_string(a);
        return fail(Errc::kIntegrity, "archive is truncated or corrupt reading " +
                                          std::string(what) + ": " + (e != nullptr ? e : "?"));
      }
      return failErrno("read " + std::string(what));
    }
    if (n == 0) {
      break;
    }
    s.size += static_cast<uint64_t>(n);
    if (s.size > max) {
      return fail(Errc::kTooLarge, std::string(what) + " is larger than " + std::to_string(max) +
                                       " bytes");
    }
    h.update(buf.data(), static_cast<size_t>(n));
    const char* p = buf.data();
    auto left = static_cast<size_t>(n);
    while (left > 0) {
      ssize_t w = retryOnEintr([&] { return ::write(fd.get(), p, left); });
      if (w < 0) {
        return failErrno("write " + out);
      }
      p += w;
      left -= static_cast<size_t>(w);
    }
  }
  s.hex = h.hex();
  return s;
}

// Normalizes a relative path inside an archive or layout; refuses absolute paths and "..".
Result<std::string> cleanRelPath(std::string_view p) {
  if (p.empty() || p.front() == '/' || p.size() > 4096) {
    return fail(Errc::kPermission, "archive path '" + std::string(p.substr(0, 200)) +
                                       "' is absolute, empty or too long");
  }
  std::string out;
  size_t i = 0;
  while (i <= p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string_view::npos) {
      j = p.size();
    }
    std::string_view c = p.substr(i, j - i);
    if (c == "..") {
      return fail(Errc::kPermission, "archive path '" + std::string(p.substr(0, 200)) +
                                         "' contains '..'");
    }
    if (!c.empty() && c != ".") {
      out += (out.empty() ? "" : "/") + std::string(c);
    }
    i = j + 1;
  }
  return out;
}

// Where the input's files come from: a directory, or a tar read once into staging.
class Source {
 public:
  virtual ~Source() = default;
  // Copies the file at `rel` into staging (hashing it), at most `max` bytes.
  virtual Result<Staged> stage(const std::string& rel, uint64_t max) = 0;
  virtual bool has(const std::string& rel) = 0;
};

class DirSource final : public Source {
 public:
  DirSource(std::string dir, std::string staging) : dir_(std::move(dir)), staging_(std::move(staging)) {}
  Result<Staged> stage(const std::string& rel, uint64_t max) override {
    NV_ASSIGN_OR_RETURN(std::string clean, cleanRelPath(rel));
    std::string p = dir_ + "/" + clean;
    UniqueFd fd(::open(p.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) {
      return failErrno("open " + p);
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
      return fail(Errc::kInvalidArgument, p + " is not a regular file");
    }
    return copyHashing(fd.get(), staging_ + "/in-" + std::to_string(n_++), max, clean);
  }
  bool has(const std::string& rel) override {
    auto clean = cleanRelPath(rel);
    return clean && ::access((dir_ + "/" + *clean).c_str(), F_OK) == 0;
  }

 private:
  std::string dir_;
  std::string staging_;
  int n_ = 0;
};

class TarSource final : public Source {
 public:
  static Result<std::unique_ptr<TarSource>> read(const std::string& file, const std::string& staging,
                                                 uint64_t max_file) {
    auto src = std::unique_ptr<TarSource>(new TarSource());
    std::unique_ptr<archive, int (*)(archive*)> a(archive_read_new(), archive_read_free);
    archive_read_support_filter_gzip(a.get());
    archive_read_support_format_tar(a.get());
    if (archive_read_open_filename(a.get(), file.c_str(), 1 << 16) != ARCHIVE_OK) {
      return fail(Errc::kInvalidArgument, file + " is not a tar archive: " +
                                              archive_error_string(a.get()));
    }
    archive_entry* e = nullptr;
    uint64_t count = 0;
    for (;;) {
      int rc = archive_read_next_header(a.get(), &e);
      if (rc == ARCHIVE_EOF) {
        break;
      }
      if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
        return fail(Errc::kIntegrity, file + " is truncated or not a tar archive: " +
                                          archive_error_string(a.get()));
      }
      if (++count > kMaxArchiveEntries) {
        return fail(Errc::kTooLarge, file + " has more than 100000 entries");
      }
      if (archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e) != nullptr) {
        continue;
      }
      const char* name = archive_entry_pathname(e);
      NV_ASSIGN_OR_RETURN(std::string clean, cleanRelPath(name != nullptr ? name : ""));
      NV_ASSIGN_OR_RETURN(Staged s, copyHashing(-1, staging + "/in-" + std::to_string(count),
                                                max_file, clean, a.get()));
      src->files_[clean] = s;
    }
    return src;
  }
  Result<Staged> stage(const std::string& rel, uint64_t max) override {
    NV_ASSIGN_OR_RETURN(std::string clean, cleanRelPath(rel));
    auto it = files_.find(clean);
    if (it == files_.end()) {
      return fail(Errc::kNotFound, "archive has no file '" + clean.substr(0, 200) + "'");
    }
    if (it->second.size > max) {
      return fail(Errc::kTooLarge, clean + " is larger than " + std::to_string(max) + " bytes");
    }
    return it->second;
  }
  bool has(const std::string& rel) override {
    auto clean = cleanRelPath(rel);
    return clean && files_.contains(*clean);
  }

 private:
  TarSource() = default;
  std::map<std::string, Staged> files_;
};

class Importer {
 public:
  Importer(Store& store, const ImportOptions& opts, std::string staging, Source& src)
      : store_(store), opts_(opts), staging_(std::move(staging)), src_(src) {}

  Result<std::vector<ImageRecord>> run() {
    std::vector<std::pair<std::string, Descriptor>> todo;  // name, manifest descriptor
    if (src_.has("index.json")) {
      NV_TRY(checkLayoutFile());
      NV_ASSIGN_OR_RETURN(Staged s, src_.stage("index.json", kMaxMetadataBytes));
      NV_ASSIGN_OR_RETURN(std::string text, readFileBounded(s.path, kMaxMetadataBytes));
      NV_ASSIGN_OR_RETURN(Index idx, parseIndex(text));
      NV_ASSIGN_OR_RETURN(todo, selectFromIndex(idx));
    } else if (src_.has("manifest.json")) {
      NV_ASSIGN_OR_RETURN(todo, convertDockerSave());
    } else {
      return fail(Errc::kInvalidArgument,
                  "input is neither an OCI image layout (index.json) nor a docker save archive "
                  "(manifest.json)");
    }
    if (todo.empty()) {
      return fail(Errc::kNotFound, "input contains no linux/amd64 image");
    }
    if (opts_.name) {
      if (todo.size() != 1) {
        return fail(Errc::kInvalidArgument, "--name given but the input holds " +
                                                std::to_string(todo.size()) + " images");
      }
      todo[0].first = *opts_.name;
    }
    std::vector<ImageRecord> out;
    for (auto& [name, desc] : todo) {
      if (name.empty()) {
        return fail(Errc::kInvalidArgument,
                    "image " + desc.digest.substr(0, 19) + " has no name: pass --name NAME:TAG");
      }
      NV_ASSIGN_OR_RETURN(std::string norm, normalizeName(name));
      NV_ASSIGN_OR_RETURN(ImageRecord r, importManifest(norm, desc));
      commit_.names.emplace_back(r.name, r.digest);
      out.push_back(std::move(r));
    }
    NV_TRY(store_.commit(commit_));
    return out;
  }

 private:
  Result<void> checkLayoutFile() {
    if (!src_.has("oci-layout")) {
      return fail(Errc::kInvalidArgument, "OCI layout has no oci-layout file");
    }
    NV_ASSIGN_OR_RETURN(Staged s, src_.stage("oci-layout", 4096));
    NV_ASSIGN_OR_RETURN(std::string text, readFileBounded(s.path, 4096));
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("imageLayoutVersion") ||
        !j["imageLayoutVersion"].is_string()) {
      return fail(Errc::kInvalidArgument, "oci-layout file is not valid");
    }
    return {};
  }

  Result<std::vector<std::pair<std::string, Descriptor>>> selectFromIndex(const Index& idx) {
    std::vector<std::pair<std::string, Descriptor>> out;
    for (const auto& d : idx.manifests) {
      std::string name;
      if (auto it = d.annotations.find(std::string(kRefName)); it != d.annotations.end()) {
        name = it->second;
      } else if (auto c = d.annotations.find("io.containerd.image.name"); c != d.annotations.end()) {
        name = c->second;
      }
      if (isIndexType(d.media_type)) {
        NV_ASSIGN_OR_RETURN(std::string text, fetchText(d, "nested index"));
        NV_ASSIGN_OR_RETURN(Index nested, parseIndex(text));
        NV_ASSIGN_OR_RETURN(Descriptor m, pickPlatform(nested));
        out.emplace_back(name, m);
      } else if (!d.platform || (d.platform->os == "linux" && d.platform->architecture == "amd64")) {
        out.emplace_back(name, d);
      }
    }
    return out;
  }

  // docker save: manifest.json [{Config, RepoTags, Layers}] -> OCI manifests in staging.
  Result<std::vector<std::pair<std::string, Descriptor>>> convertDockerSave() {
    NV_ASSIGN_OR_RETURN(Staged s, src_.stage("manifest.json", kMaxMetadataBytes));
    NV_ASSIGN_OR_RETURN(std::string text, readFileBounded(s.path, kMaxMetadataBytes));
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_array() || j.size() > kMaxIndexEntries) {
      return fail(Errc::kInvalidArgument, "docker save manifest.json is not a JSON array");
    }
    std::vector<std::pair<std::string, Descriptor>> out;
    for (const auto& e : j) {
      if (!e.is_object() || !e.contains("Config") || !e["Config"].is_string() ||
          !e.contains("Layers") || !e["Layers"].is_array() || e["Layers"].size() > kMaxLayers) {
        return fail(Errc::kInvalidArgument, "docker save manifest.json entry is malformed");
      }
      Manifest m;
      NV_ASSIGN_OR_RETURN(Staged cfg, src_.stage(e["Config"].get<std::string>(), kMaxMetadataBytes));
      m.config = {std::string(media::kOciConfig), digestOf(cfg.hex), cfg.size, {}, {}};
      NV_TRY(keep(cfg));
      for (const auto& l : e["Layers"]) {
        if (!l.is_string()) {
          return fail(Errc::kInvalidArgument, "docker save layer path is not a string");
        }
        NV_ASSIGN_OR_RETURN(Staged ls, src_.stage(l.get<std::string>(), opts_.max_layer_bytes));
        NV_ASSIGN_OR_RETURN(std::string type, sniffLayerType(ls.path));
        m.layers.push_back({type, digestOf(ls.hex), ls.size, {}, {}});
        NV_TRY(keep(ls));
      }
      std::string mtext = serializeManifest(m);
      std::string mhex = sha256Hex(mtext);
      NV_TRY(writeFileAtomic(staging_ + "/blob-" + mhex, mtext));
      std::string name;
      if (e.contains("RepoTags") && e["RepoTags"].is_array() && !e["RepoTags"].empty() &&
          e["RepoTags"][0].is_string()) {
        name = e["RepoTags"][0].get<std::string>();
      }
      out.emplace_back(name, Descriptor{std::string(media::kOciManifest), digestOf(mhex),
                                        mtext.size(), {}, {}});
    }
    return out;
  }

  static Result<std::string> sniffLayerType(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    std::array<unsigned char, 4> m{};
    if (!fd || ::read(fd.get(), m.data(), m.size()) < 0) {
      return failErrno("read " + path);
    }
    if (m[0] == 0x1f && m[1] == 0x8b) {
      return std::string(media::kOciLayerGzip);
    }
    if (m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f && m[3] == 0xfd) {
      return std::string(media::kOciLayerZstd);
    }
    return std::string(media::kOciLayerTar);
  }

  // Moves a staged, hashed file to staging/blob-<hex> (its verified name).
  Result<void> keep(const Staged& s) {
    std::string to = staging_ + "/blob-" + s.hex;
    if (::access(to.c_str(), F_OK) == 0) {
      return {};
    }
    if (::link(s.path.c_str(), to.c_str()) != 0) {
      return failErrno("stage " + to);
    }
    return {};
  }

  // Fetches and verifies a blob against its descriptor: size first, then sha256.
  Result<std::string> fetch(const Descriptor& d, std::string_view what, uint64_t max) {
    NV_ASSIGN_OR_RETURN(std::string hex, digestHex(d.digest));
    if (d.size > max) {
      return fail(Errc::kTooLarge, std::string(what) + " " + d.digest.substr(0, 19) +
                                       " is larger than the limit of " + std::to_string(max) +
                                       " bytes");
    }
    std::string path = staging_ + "/blob-" + hex;
    if (::access(path.c_str(), F_OK) == 0) {
      return path;  // already verified (or produced by the docker conversion)
    }
    if (opts_.progress) {
      opts_.progress({"verify", std::string(what), 0, d.size});
    }
    auto staged = src_.stage("blobs/sha256/" + hex, d.size);
    if (!staged) {
      if (staged.error().is(Errc::kTooLarge)) {
        return fail(Errc::kIntegrity, std::string(what) + " " + d.digest.substr(0, 19) +
                                          ": size mismatch (blob is larger than its descriptor's " +
                                          std::to_string(d.size) + " bytes)");
      }
      return tl::unexpected(staged.error().wrap(std::string(what) + " " + d.digest.substr(0, 19)));
    }
    if (staged->size != d.size) {
      return fail(Errc::kIntegrity, std::string(what) + " " + d.digest.substr(0, 19) +
                                        ": size mismatch (descriptor says " +
                                        std::to_string(d.size) + ", blob has " +
                                        std::to_string(staged->size) + ")");
    }
    if (staged->hex != hex) {
      return fail(Errc::kIntegrity, std::string(what) + " " + d.digest.substr(0, 19) +
                                        ": digest mismatch (content is sha256:" + staged->hex + ")");
    }
    NV_TRY(keep(*staged));
    if (opts_.progress) {
      opts_.progress({"verify", std::string(what), d.size, d.size});
    }
    return path;
  }

  Result<std::string> fetchText(const Descriptor& d, std::string_view what) {
    NV_ASSIGN_OR_RETURN(std::string path, fetch(d, what, kMaxMetadataBytes));
    return readFileBounded(path, kMaxMetadataBytes);
  }

  Result<ImageRecord> importManifest(const std::string& name, const Descriptor& desc) {
    ImageRecord r;
    r.name = name;
    r.digest = desc.digest;
    if (!isManifestType(desc.media_type)) {
      return fail(Errc::kUnsupported, "descriptor for " + name + " is not an image manifest");
    }
    NV_ASSIGN_OR_RETURN(std::string mtext, fetchText(desc, "manifest"));
    NV_ASSIGN_OR_RETURN(r.manifest, parseManifest(mtext));
    NV_ASSIGN_OR_RETURN(std::string ctext, fetchText(r.manifest.config, "config"));
    NV_ASSIGN_OR_RETURN(r.config, parseConfig(ctext));
    if (r.config.os != "linux" || r.config.architecture != "amd64") {
      return fail(Errc::kUnsupported, "image " + name + " is " + r.config.os + "/" +
                                          r.config.architecture + ", not linux/amd64");
    }
    if (r.manifest.layers.empty()) {
      return fail(Errc::kInvalidArgument, "image " + name + " has no layers");
    }
    if (r.manifest.layers.size() != r.config.diff_ids.size()) {
      return fail(Errc::kIntegrity, "image has " + std::to_string(r.manifest.layers.size()) +
                                        " layers but its config lists " +
                                        std::to_string(r.config.diff_ids.size()) + " diff_ids");
    }
    r.size = mtext.size() + ctext.size();
    for (const auto& l : r.manifest.layers) {
      r.size += l.size;
    }
    if (alreadyStored(r)) {
      return r;  // only the name is new; the policy check and the name commit still run
    }
    for (size_t i = 0; i < r.manifest.layers.size(); ++i) {
      NV_TRY(fetch(r.manifest.layers[i], "layer " + std::to_string(i + 1), opts_.max_layer_bytes));
    }
    // Unpacking checks diff_ids and refuses hostile entries before anything is committed.
    std::string tree = staging_ + "/tree-" + std::to_string(trees_++);
    if (::mkdir(tree.c_str(), 0755) != 0) {
      return failErrno("mkdir " + tree);
    }
    NV_TRY(unpackLayers(tree, r.manifest, r.config,
                        [&](const std::string& hex) { return staging_ + "/blob-" + hex; },
                        opts_.limits, opts_.progress));
    std::string chain = chainId(r.config.diff_ids).substr(7);
    std::string final_rootfs = store_.rootfsDir() + "/" + chain + ".erofs";
    if (opts_.build_rootfs && ::access(final_rootfs.c_str(), F_OK) != 0) {
      if (opts_.progress) {
        opts_.progress({"rootfs", "mkfs.erofs", 0, 0});
      }
      std::string img = staging_ + "/rootfs-" + chain + ".erofs";
      NV_TRY(buildErofs(tree, img));
      commit_.files.emplace_back(img, final_rootfs);
    }
    if (opts_.build_rootfs) {
      // The limits this chain was checked under, for a later re-import (alreadyStored).
      const std::string marker = staging_ + "/limits-" + chain;
      const std::string text = limitsFingerprint();
      UniqueFd fd(::open(marker.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
      if (!fd || ::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
        return failErrno("write " + marker);
      }
      commit_.files.emplace_back(marker, store_.rootfsDir() + "/" + chain + ".limits");
    }
    for (const std::string& hex :
         {desc.digest.substr(7), r.manifest.config.digest.substr(7)}) {
      commit_.files.emplace_back(staging_ + "/blob-" + hex, store_.blobPath(hex));
    }
    for (const auto& l : r.manifest.layers) {
      commit_.files.emplace_back(staging_ + "/blob-" + l.digest.substr(7),
                                 store_.blobPath(l.digest.substr(7)));
    }
    return r;
  }

  // A re-import of an image the store holds completely: manifest (same digest, so the same
  // bytes), config, every layer and the chain's EROFS rootfs. All of them were verified and
  // the layers unpacked under the import limits when they were committed (a commit happens
  // only after every check passed), so the layer work is skipped.
  bool alreadyStored(const ImageRecord& r) const {
    if (!opts_.build_rootfs) {
      return false;
    }
    const std::string chain = store_.rootfsDir() + "/" + chainId(r.config.diff_ids).substr(7);
    std::vector<std::string> paths = {store_.blobPath(r.digest.substr(7)),
                                      store_.blobPath(r.manifest.config.digest.substr(7)),
                                      chain + ".erofs"};
    for (const auto& l : r.manifest.layers) {
      paths.push_back(store_.blobPath(l.digest.substr(7)));
    }
    if (!std::all_of(paths.begin(), paths.end(),
                     [](const std::string& p) { return ::access(p.c_str(), F_OK) == 0; })) {
      return false;
    }
    // ...and under the same limits: a stricter policy re-checks the layers.
    auto verified = readFileBounded(chain + ".limits", 4096);
    return verified && *verified == limitsFingerprint();
  }

  std::string limitsFingerprint() const {
    const LayerLimits& l = opts_.limits;
    return fmt::format("total={} file={} entries={} ratio={} floor={} setuid={} fifos={} devices={}\n",
                       l.max_total_bytes, l.max_file_bytes, l.max_entries, l.max_ratio,
                       l.ratio_floor, l.allow_setuid, l.allow_fifos, l.allow_devices);
  }

  Store& store_;
  const ImportOptions& opts_;
  std::string staging_;
  Source& src_;
  Store::Commit commit_;
  int trees_ = 0;
};

}  // namespace

Result<std::vector<ImageRecord>> Store::import(const std::string& path,
                                               const ImportOptions& options) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return failErrno("import " + path);
  }
  NV_ASSIGN_OR_RETURN(std::string staging, makeStagingDir("import"));
  auto cleanup = makeScopeGuard([&] {
    UniqueFd dir(::open(tmpDir().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir) {
      (void)removeAt(dir.get(), staging.substr(staging.rfind('/') + 1));
    }
  });
  std::unique_ptr<Source> src;
  if (S_ISDIR(st.st_mode)) {
    src = std::make_unique<DirSource>(path, staging);
  } else {
    auto tar = TarSource::read(path, staging, options.max_layer_bytes);
    if (!tar) {
      return tl::unexpected(tar.error());
    }
    src = std::move(*tar);
  }
  Importer importer(*this, options, staging, *src);
  auto r = importer.run();
  if (!r) {
    return tl::unexpected(r.error().wrap("import " + path));
  }
  return r;
}

}  // namespace nv::images
