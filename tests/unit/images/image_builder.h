// SPDX-License-Identifier: Apache-2.0
// Test helpers: real tar layers (libarchive writer, none/gzip/zstd), OCI layouts, docker save
// archives, temp dirs and store listings.
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "images/digest.h"
#include "images/oci.h"

namespace nv::images::testing {

struct TarEntry {
  std::string path;
  char type = 'f';           // f file, d dir, l symlink, h hardlink, c char dev, b block, p fifo
  std::string data;          // file contents, or link target
  unsigned mode = 0644;
  int64_t uid = 0;
  int64_t gid = 0;
  int64_t mtime = 1'600'000'000;
};

inline std::string makeTar(const std::vector<TarEntry>& entries,
                           Compression comp = Compression::kNone) {
  std::string out;
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  if (comp == Compression::kGzip) {
    archive_write_add_filter_gzip(a);
    // No wall-clock time in the gzip header: the same entries give the same layer digest.
    archive_write_set_filter_option(a, "gzip", "timestamp", nullptr);
  } else if (comp == Compression::kZstd) {
    archive_write_add_filter_zstd(a);
  }
  archive_write_set_bytes_in_last_block(a, 1);
  archive_write_open(
      a, &out, nullptr,
      [](archive*, void* ctx, const void* buf, size_t n) -> la_ssize_t {
        static_cast<std::string*>(ctx)->append(static_cast<const char*>(buf), n);
        return static_cast<la_ssize_t>(n);
      },
      nullptr);
  for (const auto& e : entries) {
    archive_entry* ae = archive_entry_new();
    archive_entry_set_pathname(ae, e.path.c_str());
    archive_entry_set_uid(ae, e.uid);
    archive_entry_set_gid(ae, e.gid);
    archive_entry_set_mtime(ae, e.mtime, 0);
    archive_entry_set_perm(ae, static_cast<mode_t>(e.mode));
    switch (e.type) {
      case 'f':
        archive_entry_set_filetype(ae, AE_IFREG);
        archive_entry_set_size(ae, static_cast<la_int64_t>(e.data.size()));
        break;
      case 'd':
        archive_entry_set_filetype(ae, AE_IFDIR);
        break;
      case 'l':
        archive_entry_set_filetype(ae, AE_IFLNK);
        archive_entry_set_symlink(ae, e.data.c_str());
        break;
      case 'h':
        archive_entry_set_filetype(ae, AE_IFREG);
        archive_entry_set_hardlink(ae, e.data.c_str());
        archive_entry_set_size(ae, 0);
        break;
      case 'c':
        archive_entry_set_filetype(ae, AE_IFCHR);
        archive_entry_set_rdev(ae, makedev(1, 3));
        break;
      case 'b':
        archive_entry_set_filetype(ae, AE_IFBLK);
        archive_entry_set_rdev(ae, makedev(8, 0));
        break;
      case 'p':
        archive_entry_set_filetype(ae, AE_IFIFO);
        break;
      default:
        throw std::runtime_error("bad entry type");
    }
    archive_write_header(a, ae);
    if (e.type == 'f' && !e.data.empty()) {
      archive_write_data(a, e.data.data(), e.data.size());
    }
    archive_entry_free(ae);
  }
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

// Decompresses (for diff_ids) via libarchive's raw format.
inline std::string uncompressed(const std::string& blob) {
  archive* a = archive_read_new();
  archive_read_support_filter_all(a);
  archive_read_support_format_raw(a);
  archive_read_open_memory(a, blob.data(), blob.size());
  archive_entry* e = nullptr;
  std::string out;
  if (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    char buf[65536];
    la_ssize_t n = 0;
    while ((n = archive_read_data(a, buf, sizeof(buf))) > 0) {
      out.append(buf, static_cast<size_t>(n));
    }
  }
  archive_read_free(a);
  return out;
}

inline void writeFile(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << data;
}

inline std::string readFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// A temp dir removed (rm -rf) at destruction.
class TempDir {
 public:
  TempDir() {
    std::string t = "/tmp/nv-images-test-XXXXXX";
    path_ = ::mkdtemp(t.data());
  }
  ~TempDir() { (void)std::system(("rm -rf '" + path_ + "'").c_str()); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] std::string sub(const std::string& s) const { return path_ + "/" + s; }

 private:
  std::string path_;
};

// Every path under `root` with type and size, sorted: compare before/after a failed import.
inline std::string listing(const std::string& root, const std::string& rel = "") {
  std::vector<std::string> names;
  std::string dir = rel.empty() ? root : root + "/" + rel;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* de = ::readdir(d)) {
      std::string n = de->d_name;
      if (n != "." && n != "..") {
        names.push_back(n);
      }
    }
    ::closedir(d);
  }
  std::sort(names.begin(), names.end());
  std::string out;
  for (const auto& n : names) {
    std::string r = rel.empty() ? n : rel + "/" + n;
    struct stat st {};
    ::lstat((root + "/" + r).c_str(), &st);
    out += r + " " + std::to_string(st.st_mode) + " " +
           (S_ISDIR(st.st_mode) ? std::string("-") : std::to_string(st.st_size)) + "\n";
    if (S_ISDIR(st.st_mode)) {
      out += listing(root, r);
    }
  }
  return out;
}

struct Layer {
  std::string blob;
  Compression comp = Compression::kNone;
};

inline std::string layerMediaType(Compression c) {
  switch (c) {
    case Compression::kGzip:
      return std::string(media::kOciLayerGzip);
    case Compression::kZstd:
      return std::string(media::kOciLayerZstd);
    default:
      return std::string(media::kOciLayerTar);
  }
}

// An OCI image layout written to a directory; fields are public so tests can tamper.
struct LayoutBuilder {
  std::vector<Layer> layers;
  std::vector<std::string> diff_ids;  // default: computed
  std::string ref_name = "example.com/test/image:1.0";
  std::string arch = "amd64";

  struct Written {
    std::string manifest_digest;
    std::vector<std::string> layer_hex;
    std::string config_hex;
  };

  Written write(const std::string& dir) const {
    ::mkdir(dir.c_str(), 0755);
    ::mkdir((dir + "/blobs").c_str(), 0755);
    ::mkdir((dir + "/blobs/sha256").c_str(), 0755);
    writeFile(dir + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
    Written w;
    nlohmann::json cfg = {{"architecture", arch},
                          {"os", "linux"},
                          {"created", "2024-01-01T00:00:00Z"},
                          {"config", {{"Env", {"PATH=/bin"}}, {"Cmd", {"sh"}}}},
                          {"rootfs", {{"type", "layers"}, {"diff_ids", nlohmann::json::array()}}}};
    nlohmann::json man = {{"schemaVersion", 2},
                          {"mediaType", media::kOciManifest},
                          {"layers", nlohmann::json::array()}};
    for (size_t i = 0; i < layers.size(); ++i) {
      const auto& l = layers[i];
      std::string hex = sha256Hex(l.blob);
      writeFile(dir + "/blobs/sha256/" + hex, l.blob);
      w.layer_hex.push_back(hex);
      cfg["rootfs"]["diff_ids"].push_back(i < diff_ids.size()
                                              ? diff_ids[i]
                                              : digestOf(sha256Hex(uncompressed(l.blob))));
      man["layers"].push_back(
          {{"mediaType", layerMediaType(l.comp)}, {"digest", digestOf(hex)}, {"size", l.blob.size()}});
    }
    std::string ctext = cfg.dump();
    w.config_hex = sha256Hex(ctext);
    writeFile(dir + "/blobs/sha256/" + w.config_hex, ctext);
    man["config"] = {{"mediaType", media::kOciConfig},
                     {"digest", digestOf(w.config_hex)},
                     {"size", ctext.size()}};
    std::string mtext = man.dump();
    std::string mhex = sha256Hex(mtext);
    writeFile(dir + "/blobs/sha256/" + mhex, mtext);
    w.manifest_digest = digestOf(mhex);
    nlohmann::json idx = {{"schemaVersion", 2},
                          {"mediaType", media::kOciIndex},
                          {"manifests",
                           {{{"mediaType", media::kOciManifest},
                             {"digest", w.manifest_digest},
                             {"size", mtext.size()},
                             {"annotations", {{"org.opencontainers.image.ref.name", ref_name}}}}}}};
    writeFile(dir + "/index.json", idx.dump());
    return w;
  }
};

// Packs a directory into a tar file with the system tar.
inline void tarDir(const std::string& dir, const std::string& out) {
  (void)std::system(("tar -C '" + dir + "' -cf '" + out + "' .").c_str());
}

}  // namespace nv::images::testing
