// SPDX-License-Identifier: Apache-2.0
// Layer applier tests: real tar/gzip/zstd layers, whiteouts, links, and hostile archives.
#include "images/layer.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "common/unique_fd.h"
#include "images/digest.h"
#include "tests/unit/images/image_builder.h"

namespace nv::images {
namespace {

using testing::makeTar;
using testing::TarEntry;
using testing::TempDir;

class LayerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = tmp_.sub("root");
    ASSERT_EQ(::mkdir(root_.c_str(), 0755), 0);
    fd_ = UniqueFd(::open(root_.c_str(), O_RDONLY | O_DIRECTORY));
    ASSERT_TRUE(fd_);
  }

  Result<LayerResult> apply(const std::string& blob, Compression c = Compression::kNone,
                            const LayerLimits& limits = {}) {
    std::span<const uint8_t> s(reinterpret_cast<const uint8_t*>(blob.data()), blob.size());
    return applyLayerBuffer(fd_.get(), s, c, limits);
  }

  std::string errorOf(const std::string& blob, Compression c = Compression::kNone,
                      const LayerLimits& limits = {}) {
    auto r = apply(blob, c, limits);
    EXPECT_FALSE(r) << "layer was accepted";
    return r ? std::string() : r.error().message();
  }

  struct stat lst(const std::string& rel) {
    struct stat st {};
    EXPECT_EQ(::lstat((root_ + "/" + rel).c_str(), &st), 0) << rel;
    return st;
  }
  bool exists(const std::string& rel) {
    struct stat st {};
    return ::lstat((root_ + "/" + rel).c_str(), &st) == 0;
  }
  std::string content(const std::string& rel) { return testing::readFile(root_ + "/" + rel); }

  TempDir tmp_;
  std::string root_;
  UniqueFd fd_;
};

TEST_F(LayerTest, AppliesMultipleLayersWithWhiteoutsAndLinks) {
  std::string l1 = makeTar(
      {{"./", 'd', "", 0755},
       {"etc/", 'd', "", 0755, 0, 0, 1'500'000'000},
       {"etc/passwd", 'f', "root:x:0:0::/root:/bin/sh\n", 0644},
       {"etc/shadow", 'f', "secret\n", 0600, 0, 42},
       {"bin/", 'd', "", 0755},
       {"bin/busybox", 'f', "ELF...", 0755, 1000, 1000, 1'234'567'890},
       {"bin/sh", 'l', "busybox"},
       {"bin/ls", 'h', "bin/busybox"},
       {"opt/old/", 'd', "", 0755},
       {"opt/old/a", 'f', "a"},
       {"opt/old/sub/b", 'f', "b"},  // parent created implicitly
       {"var/gone", 'f', "bye"},
       {"usr/bin/", 'd', "", 0755},
       {"sbin", 'l', "/usr/bin"}},
      Compression::kGzip);
  auto r1 = apply(l1, Compression::kGzip);
  ASSERT_TRUE(r1) << r1.error().message();
  EXPECT_EQ(r1->diff_id_hex, sha256Hex(testing::uncompressed(l1)));
  EXPECT_EQ(r1->entries, 14u);
  EXPECT_EQ(lst("etc").st_mtim.tv_sec, 1'500'000'000);  // set after its children were written

  std::string l2 = makeTar({{"var/.wh.gone", 'f', ""},
                            {"opt/old/new", 'f', "fresh"},
                            {"opt/old/.wh..wh..opq", 'f', ""},
                            {"etc/passwd", 'f', "changed\n", 0640},
                            {"sbin/tool", 'f', "in usr/bin via absolute symlink", 0755}},
                           Compression::kZstd);
  auto r2 = apply(l2, Compression::kZstd);
  ASSERT_TRUE(r2) << r2.error().message();

  EXPECT_EQ(content("etc/passwd"), "changed\n");
  EXPECT_EQ(lst("etc/passwd").st_mode & 07777, 0640u);
  EXPECT_EQ(content("etc/shadow"), "secret\n");
  EXPECT_EQ(lst("etc/shadow").st_mode & 07777, 0600u);
  struct stat bb = lst("bin/busybox");
  EXPECT_TRUE(S_ISREG(bb.st_mode));
  EXPECT_EQ(bb.st_mode & 07777, 0755u);
  EXPECT_EQ(bb.st_mtim.tv_sec, 1'234'567'890);
  if (::geteuid() == 0) {
    EXPECT_EQ(bb.st_uid, 1000u);
    EXPECT_EQ(bb.st_gid, 1000u);
    EXPECT_EQ(lst("etc/shadow").st_gid, 42u);
  }
  EXPECT_TRUE(S_ISLNK(lst("bin/sh").st_mode));
  char target[64] = {};
  ASSERT_EQ(::readlink((root_ + "/bin/sh").c_str(), target, sizeof(target)), 7);
  EXPECT_STREQ(target, "busybox");
  EXPECT_EQ(lst("bin/ls").st_ino, bb.st_ino);
  EXPECT_EQ(bb.st_nlink, 2u);
  EXPECT_FALSE(exists("var/gone"));
  EXPECT_TRUE(exists("var"));
  EXPECT_FALSE(exists("opt/old/a"));     // hidden by the opaque marker
  EXPECT_FALSE(exists("opt/old/sub"));
  EXPECT_EQ(content("opt/old/new"), "fresh");  // same-layer entry survives
  EXPECT_FALSE(exists("opt/old/.wh..wh..opq"));
  EXPECT_EQ(content("usr/bin/tool"), "in usr/bin via absolute symlink");
  EXPECT_TRUE(S_ISLNK(lst("sbin").st_mode));
}

TEST_F(LayerTest, ReplacesFileWithDirectoryAndBack) {
  ASSERT_TRUE(apply(makeTar({{"x", 'f', "file"}, {"y/", 'd'}, {"y/z", 'f', "z"}})));
  ASSERT_TRUE(apply(makeTar({{"x/", 'd'}, {"x/inner", 'f', "i"}, {"y", 'f', "now a file"}})));
  EXPECT_EQ(content("x/inner"), "i");
  EXPECT_EQ(content("y"), "now a file");
}

TEST_F(LayerTest, RefusesPathTraversal) {
  EXPECT_NE(errorOf(makeTar({{"a/../../evil", 'f', "x"}})).find("path traversal"), std::string::npos);
  EXPECT_NE(errorOf(makeTar({{"/etc/evil", 'f', "x"}})).find("absolute path"), std::string::npos);
  EXPECT_FALSE(exists("evil"));
}

TEST_F(LayerTest, RefusesWritingThroughEscapingSymlink) {
  std::string msg = errorOf(makeTar({{"link", 'l', "../../../tmp"}, {"link/pwned", 'f', "x"}}));
  EXPECT_NE(msg.find("symlink escape"), std::string::npos) << msg;
  // Across layers too.
  ASSERT_TRUE(apply(makeTar({{"up", 'l', "a/../../.."}})));
  msg = errorOf(makeTar({{"up/x", 'f', "x"}}));
  EXPECT_NE(msg.find("symlink escape"), std::string::npos) << msg;
}

TEST_F(LayerTest, RefusesHardlinkEscape) {
  std::string msg = errorOf(makeTar({{"pw", 'h', "../../etc/passwd"}}));
  EXPECT_NE(msg.find("hardlink escape"), std::string::npos) << msg;
  msg = errorOf(makeTar({{"l", 'l', "../.."}, {"pw", 'h', "l/etc/passwd"}}));
  EXPECT_NE(msg.find("hardlink escape"), std::string::npos) << msg;
  EXPECT_FALSE(exists("pw"));
}

TEST_F(LayerTest, RefusesDeviceNodesAndFifosUnlessAllowed) {
  EXPECT_NE(errorOf(makeTar({{"dev/null", 'c'}})).find("device node"), std::string::npos);
  EXPECT_NE(errorOf(makeTar({{"dev/sda", 'b'}})).find("device node"), std::string::npos);
  EXPECT_NE(errorOf(makeTar({{"fifo", 'p'}})).find("FIFO"), std::string::npos);
  LayerLimits allow;
  allow.allow_fifos = true;
  ASSERT_TRUE(apply(makeTar({{"fifo", 'p', "", 0600}}), Compression::kNone, allow));
  EXPECT_TRUE(S_ISFIFO(lst("fifo").st_mode));
}

TEST_F(LayerTest, StripsSetuidUnlessAllowed) {
  auto r = apply(makeTar({{"su", 'f', "x", 04755}, {"sg", 'f', "y", 02755}}));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->stripped_setuid, 2u);
  EXPECT_EQ(lst("su").st_mode & 07777, 0755u);
  EXPECT_EQ(lst("sg").st_mode & 07777, 0755u);
  LayerLimits allow;
  allow.allow_setuid = true;
  ASSERT_TRUE(apply(makeTar({{"su2", 'f', "x", 04755}}), Compression::kNone, allow));
  EXPECT_EQ(lst("su2").st_mode & 07777, 04755u);
}

TEST_F(LayerTest, RefusesZipBombs) {
  std::string zeros(32u << 20, '\0');
  std::string bomb = makeTar({{"zeros", 'f', zeros}}, Compression::kGzip);
  ASSERT_LT(bomb.size(), 1u << 20);
  LayerLimits total;
  total.max_total_bytes = 8u << 20;
  std::string msg = errorOf(bomb, Compression::kGzip, total);
  EXPECT_NE(msg.find("uncompressed size exceeds"), std::string::npos) << msg;

  LayerLimits ratio;
  ratio.ratio_floor = 1u << 20;
  ratio.max_ratio = 100;
  msg = errorOf(bomb, Compression::kGzip, ratio);
  EXPECT_NE(msg.find("compression ratio"), std::string::npos) << msg;

  LayerLimits file;
  file.max_file_bytes = 1u << 20;
  msg = errorOf(bomb, Compression::kGzip, file);
  EXPECT_NE(msg.find("larger than the limit"), std::string::npos) << msg;

  std::vector<TarEntry> many;
  for (int i = 0; i < 50; ++i) {
    many.push_back({"f" + std::to_string(i), 'f', "x"});
  }
  LayerLimits entries;
  entries.max_entries = 20;
  msg = errorOf(makeTar(many), Compression::kNone, entries);
  EXPECT_NE(msg.find("more than 20 entries"), std::string::npos) << msg;
}

TEST_F(LayerTest, RefusesTruncatedAndMislabelledLayers) {
  std::string big(300000, 'q');
  for (size_t i = 0; i < big.size(); ++i) {
    big[i] = static_cast<char>('a' + (i * 7919) % 26);
  }
  std::string gz = makeTar({{"f", 'f', big}}, Compression::kGzip);
  std::string msg = errorOf(gz.substr(0, gz.size() / 2), Compression::kGzip);
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
  std::string tar = makeTar({{"f", 'f', big}});
  msg = errorOf(tar.substr(0, tar.size() / 2));
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
  msg = errorOf(tar, Compression::kGzip);
  EXPECT_NE(msg.find("compressed"), std::string::npos) << msg;
}

TEST_F(LayerTest, HashOnlyMatchesApply) {
  std::string blob = makeTar({{"a", 'f', "hello"}}, Compression::kZstd);
  std::string path = tmp_.sub("blob");
  testing::writeFile(path, blob);
  UniqueFd fd(::open(path.c_str(), O_RDONLY));
  auto h = hashLayer(fd.get(), Compression::kZstd, {});
  ASSERT_TRUE(h) << h.error().message();
  EXPECT_EQ(h->diff_id_hex, sha256Hex(testing::uncompressed(blob)));
  EXPECT_FALSE(exists("a"));
}

}  // namespace
}  // namespace nv::images
