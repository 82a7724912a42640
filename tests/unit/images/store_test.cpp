// SPDX-License-Identifier: Apache-2.0
// Store tests: import OCI layouts (dir and tar) and docker save archives, refuse tampered or
// hostile images leaving the store unchanged, refcounted rm, concurrent imports.
#include "images/store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "images/digest.h"
#include "images/rootfs.h"
#include "tests/unit/images/image_builder.h"

namespace nv::images {
namespace {

using testing::Layer;
using testing::LayoutBuilder;
using testing::makeTar;
using testing::TempDir;

bool haveMkfsErofs() { return ::access("/usr/bin/mkfs.erofs", X_OK) == 0; }

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = Store::open(tmp_.sub("store"));
    ASSERT_TRUE(s) << s.error().message();
    store_.emplace(std::move(*s));
    opts_.build_rootfs = haveMkfsErofs();
  }

  LayoutBuilder twoLayers() {
    LayoutBuilder b;
    b.layers.push_back({makeTar({{"bin/", 'd', "", 0755}, {"bin/sh", 'f', "shell", 0755},
                                 {"etc/os-release", 'f', "ID=test\n"}},
                                Compression::kGzip),
                        Compression::kGzip});
    b.layers.push_back({makeTar({{"etc/.wh.os-release", 'f'}, {"etc/hostname", 'f', "box\n"}},
                                Compression::kZstd),
                        Compression::kZstd});
    return b;
  }

  // Imports `b` (written as a dir) and expects a refusal containing `needle`, with the store
  // byte-for-byte listing unchanged.
  void expectRefused(const LayoutBuilder& b, const std::string& needle,
                     const std::function<void(const std::string&, const LayoutBuilder::Written&)>&
                         tamper = {}) {
    std::string dir = tmp_.sub("layout-bad-" + std::to_string(n_++));
    auto w = b.write(dir);
    if (tamper) {
      tamper(dir, w);
    }
    std::string before = testing::listing(store_->root());
    auto r = store_->import(dir, opts_);
    ASSERT_FALSE(r) << "import of a bad image succeeded (wanted: " << needle << ")";
    EXPECT_NE(r.error().message().find(needle), std::string::npos) << r.error().message();
    EXPECT_EQ(testing::listing(store_->root()), before);
  }

  TempDir tmp_;
  std::optional<Store> store_;
  ImportOptions opts_;
  int n_ = 0;
};

TEST_F(StoreTest, ImportsOciLayoutDirectory) {
  auto w = twoLayers().write(tmp_.sub("layout"));
  auto r = store_->import(tmp_.sub("layout"), opts_);
  ASSERT_TRUE(r) << r.error().message();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].name, "example.com/test/image:1.0");
  EXPECT_EQ((*r)[0].digest, w.manifest_digest);
  for (const auto& hex : w.layer_hex) {
    EXPECT_EQ(::access(store_->blobPath(hex).c_str(), F_OK), 0);
  }
  auto list = store_->list();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].config.cmd, std::vector<std::string>{"sh"});
  auto got = store_->get("example.com/test/image:1.0");
  ASSERT_TRUE(got);
  auto by_digest = store_->get(w.manifest_digest);
  ASSERT_TRUE(by_digest);
  auto js = store_->inspect("example.com/test/image:1.0");
  ASSERT_TRUE(js);
  auto j = nlohmann::json::parse(*js);
  EXPECT_EQ(j["digest"], w.manifest_digest);
  EXPECT_EQ(j["layers"].size(), 2u);
  EXPECT_EQ(j["config"]["architecture"], "amd64");
  EXPECT_EQ(testing::listing(store_->tmpDir()), "");  // no staging left behind
  if (haveMkfsErofs()) {
    EXPECT_TRUE(j["rootfsImage"].is_string());
  }
  EXPECT_FALSE(store_->get("nope:1"));
}

TEST_F(StoreTest, ImportsOciLayoutTarWithNameOverride) {
  twoLayers().write(tmp_.sub("layout"));
  testing::tarDir(tmp_.sub("layout"), tmp_.sub("layout.tar"));
  opts_.name = "mine";
  auto r = store_->import(tmp_.sub("layout.tar"), opts_);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ((*r)[0].name, "mine:latest");
  EXPECT_TRUE(store_->get("mine"));
}

TEST_F(StoreTest, ImportsDockerSaveArchive) {
  std::string dir = tmp_.sub("docker");
  ::mkdir(dir.c_str(), 0755);
  ::mkdir((dir + "/abc").c_str(), 0755);
  std::string layer = makeTar({{"hello", 'f', "world"}});
  testing::writeFile(dir + "/abc/layer.tar", layer);
  nlohmann::json cfg = {{"architecture", "amd64"},
                        {"os", "linux"},
                        {"config", {{"Cmd", {"/hello"}}}},
                        {"rootfs", {{"type", "layers"},
                                    {"diff_ids", {digestOf(sha256Hex(layer))}}}}};
  std::string ctext = cfg.dump();
  testing::writeFile(dir + "/" + sha256Hex(ctext) + ".json", ctext);
  nlohmann::json man = nlohmann::json::array(
      {{{"Config", sha256Hex(ctext) + ".json"}, {"RepoTags", {"hello:v1"}}, {"Layers", {"abc/layer.tar"}}}});
  testing::writeFile(dir + "/manifest.json", man.dump());
  testing::tarDir(dir, tmp_.sub("docker.tar"));
  auto r = store_->import(tmp_.sub("docker.tar"), opts_);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ((*r)[0].name, "hello:v1");
  EXPECT_EQ((*r)[0].manifest.layers[0].digest, digestOf(sha256Hex(layer)));
  EXPECT_EQ((*r)[0].config.cmd, std::vector<std::string>{"/hello"});
  auto again = store_->get("hello:v1");
  ASSERT_TRUE(again) << again.error().message();
}

TEST_F(StoreTest, RefusesTamperedBlob) {
  expectRefused(twoLayers(), "digest mismatch", [](const std::string& dir, const auto& w) {
    std::string p = dir + "/blobs/sha256/" + w.layer_hex[1];
    std::string b = testing::readFile(p);
    b[b.size() / 2] = static_cast<char>(b[b.size() / 2] ^ 0x5a);
    testing::writeFile(p, b);
  });
}

TEST_F(StoreTest, RefusesSizeMismatch) {
  expectRefused(twoLayers(), "size mismatch", [](const std::string& dir, const auto& w) {
    std::string p = dir + "/blobs/sha256/" + w.layer_hex[0];
    testing::writeFile(p, testing::readFile(p) + "extra");
  });
}

TEST_F(StoreTest, RefusesWrongDiffId) {
  LayoutBuilder b = twoLayers();
  b.diff_ids = {digestOf(sha256Hex(testing::uncompressed(b.layers[0].blob))),
                digestOf(sha256Hex("not the layer"))};
  expectRefused(b, "diff_id mismatch");
}

TEST_F(StoreTest, RefusesTruncatedLayer) {
  LayoutBuilder b;
  std::string big(200000, 'x');
  for (size_t i = 0; i < big.size(); ++i) {
    big[i] = static_cast<char>((i * 2654435761u) >> 13);
  }
  std::string gz = makeTar({{"f", 'f', big}}, Compression::kGzip);
  b.layers.push_back({gz.substr(0, gz.size() / 2), Compression::kGzip});  // consistent digest
  b.diff_ids = {digestOf(sha256Hex(testing::uncompressed(gz)))};
  expectRefused(b, "truncated");
}

TEST_F(StoreTest, RefusesHostileLayers) {
  LayoutBuilder traversal;
  traversal.layers.push_back({makeTar({{"../../escape", 'f', "x"}}), Compression::kNone});
  expectRefused(traversal, "path traversal");

  LayoutBuilder symlink;
  symlink.layers.push_back({makeTar({{"l", 'l', "../../../../"}}), Compression::kNone});
  symlink.layers.push_back({makeTar({{"l/etc/evil", 'f', "x"}}), Compression::kNone});
  expectRefused(symlink, "symlink escape");

  LayoutBuilder device;
  device.layers.push_back({makeTar({{"dev/mem", 'c'}}), Compression::kNone});
  expectRefused(device, "device node");

  LayoutBuilder bomb;
  bomb.layers.push_back({makeTar({{"z", 'f', std::string(16u << 20, '\0')}}, Compression::kGzip),
                         Compression::kGzip});
  opts_.limits.max_total_bytes = 4u << 20;
  expectRefused(bomb, "zip bomb");
}

TEST_F(StoreTest, RefusesWrongPlatformAndBadIndex) {
  LayoutBuilder arm = twoLayers();
  arm.arch = "arm64";
  expectRefused(arm, "not linux/amd64");
  expectRefused(twoLayers(), "not valid JSON", [](const std::string& dir, const auto&) {
    testing::writeFile(dir + "/index.json", "{not json");
  });
}

TEST_F(StoreTest, ReImport_SkipsLayerWorkUnderTheSameLimitsOnly) {
  if (!haveMkfsErofs()) GTEST_SKIP() << "mkfs.erofs missing (erofs-utils)";
  auto w = twoLayers().write(tmp_.sub("layout"));
  ASSERT_TRUE(store_->import(tmp_.sub("layout"), opts_));
  // The store holds every blob and the rootfs: a re-import under the same limits does not read
  // the input's layers (a damaged copy there does not matter) and only adds the new name.
  std::string p = tmp_.sub("layout") + "/blobs/sha256/" + w.layer_hex[1];
  std::string b = testing::readFile(p);
  b[b.size() / 2] = static_cast<char>(b[b.size() / 2] ^ 0x5a);
  testing::writeFile(p, b);
  opts_.name = "again:1";
  auto again = store_->import(tmp_.sub("layout"), opts_);
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_EQ((*again)[0].digest, w.manifest_digest);
  EXPECT_TRUE(store_->get("again:1"));
  // Other limits: the layers are checked again, so the damaged copy is refused.
  opts_.limits.allow_setuid = true;
  opts_.name = "other:1";
  auto checked = store_->import(tmp_.sub("layout"), opts_);
  ASSERT_FALSE(checked);
  EXPECT_NE(checked.error().message().find("digest mismatch"), std::string::npos)
      << checked.error().message();
  EXPECT_FALSE(store_->get("other:1"));
  // Removing the image removes the rootfs and its limits record.
  ASSERT_TRUE(store_->remove("example.com/test/image:1.0"));
  ASSERT_TRUE(store_->remove("again:1"));
  EXPECT_EQ(testing::listing(store_->rootfsDir()), "");
}

TEST(ImageBuilder, GzipLayersCarryNoTimestamp_SameEntriesSameDigest) {
  // Bytes 4..7 of a gzip header are its MTIME: zero, so a layer's digest never depends on the
  // second it was built in (RemoveKeepsSharedBlobs builds the same layer twice).
  const std::string gz = makeTar({{"f", 'f', "x"}}, Compression::kGzip);
  ASSERT_GE(gz.size(), 10u);
  EXPECT_EQ(gz.substr(4, 4), std::string(4, '\0'));
}

TEST_F(StoreTest, RemoveKeepsSharedBlobs) {
  LayoutBuilder a = twoLayers();
  LayoutBuilder b = twoLayers();
  b.ref_name = "example.com/other:2";
  b.layers[1] = {makeTar({{"only-b", 'f', "b"}}), Compression::kNone};
  auto wa = a.write(tmp_.sub("a"));
  auto wb = b.write(tmp_.sub("b"));
  ASSERT_TRUE(store_->import(tmp_.sub("a"), opts_));
  ASSERT_TRUE(store_->import(tmp_.sub("b"), opts_));
  ASSERT_EQ(wa.layer_hex[0], wb.layer_hex[0]);  // shared base layer
  ASSERT_TRUE(store_->remove("example.com/test/image:1.0"));
  EXPECT_EQ(::access(store_->blobPath(wa.layer_hex[0]).c_str(), F_OK), 0);
  EXPECT_NE(::access(store_->blobPath(wa.layer_hex[1]).c_str(), F_OK), 0);
  EXPECT_EQ(::access(store_->blobPath(wb.layer_hex[1]).c_str(), F_OK), 0);
  EXPECT_NE(::access(store_->blobPath(wa.manifest_digest.substr(7)).c_str(), F_OK), 0);
  ASSERT_TRUE(store_->remove("example.com/other:2"));
  EXPECT_EQ(testing::listing(store_->root() + "/blobs/sha256"), "");
  EXPECT_EQ(testing::listing(store_->rootfsDir()), "");
  EXPECT_FALSE(store_->remove("example.com/other:2"));
}

TEST_F(StoreTest, ConcurrentImportsBothLand) {
  std::vector<std::string> dirs;
  for (int i = 0; i < 4; ++i) {
    LayoutBuilder b = twoLayers();
    b.ref_name = "example.com/c:" + std::to_string(i);
    b.layers[1] = {makeTar({{"n", 'f', std::to_string(i)}}), Compression::kNone};
    dirs.push_back(tmp_.sub("c" + std::to_string(i)));
    b.write(dirs.back());
  }
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (const auto& d : dirs) {
    threads.emplace_back([&, d] {
      // A second Store object per thread: as if separate processes.
      auto s = Store::open(store_->root());
      if (s && s->import(d, opts_)) {
        ++ok;
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(ok.load(), 4);
  auto list = store_->list();
  ASSERT_TRUE(list);
  EXPECT_EQ(list->size(), 4u);
}

}  // namespace
}  // namespace nv::images
