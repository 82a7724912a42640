// SPDX-License-Identifier: Apache-2.0
// Rootfs image tests: EROFS build and cache reuse, snapshot dirs, scratch disks.
#include "images/rootfs.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <chrono>

#include "common/subprocess.h"
#include "tests/unit/images/image_builder.h"

namespace nv::images {
namespace {

using namespace std::chrono_literals;
using testing::LayoutBuilder;
using testing::makeTar;
using testing::TempDir;

uint32_t le32At(const std::string& path, size_t off) {
  std::string b = testing::readFile(path);
  if (b.size() < off + 4) {
    return 0;
  }
  return static_cast<uint32_t>(static_cast<uint8_t>(b[off])) |
         static_cast<uint32_t>(static_cast<uint8_t>(b[off + 1])) << 8 |
         static_cast<uint32_t>(static_cast<uint8_t>(b[off + 2])) << 16 |
         static_cast<uint32_t>(static_cast<uint8_t>(b[off + 3])) << 24;
}

class RootfsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access("/usr/bin/mkfs.erofs", X_OK) != 0) {
      GTEST_SKIP() << "mkfs.erofs (erofs-utils) is not installed";
    }
    auto s = Store::open(tmp_.sub("store"));
    ASSERT_TRUE(s);
    store_.emplace(std::move(*s));
  }
  TempDir tmp_;
  std::optional<Store> store_;
};

TEST(ChainId, MatchesOciDefinition) {
  std::string a = "sha256:" + std::string(64, 'a');
  std::string b = "sha256:" + std::string(64, 'b');
  EXPECT_EQ(chainId({a}), a);
  EXPECT_EQ(chainId({a, b}), "sha256:" + sha256Hex(a + " " + b));
}

TEST_F(RootfsTest, BuildsErofsOnceAndReusesIt) {
  LayoutBuilder b;
  b.layers.push_back({makeTar({{"bin/", 'd', "", 0755}, {"bin/sh", 'f', "#!shell", 0755},
                               {"etc/motd", 'f', "old"}}, Compression::kGzip),
                      Compression::kGzip});
  b.layers.push_back({makeTar({{"etc/motd", 'f', "hello erofs\n"}}), Compression::kNone});
  b.write(tmp_.sub("layout"));
  ImportOptions o;
  o.build_rootfs = false;
  auto imported = store_->import(tmp_.sub("layout"), o);
  ASSERT_TRUE(imported) << imported.error().message();
  const ImageRecord& img = (*imported)[0];

  auto path = rootfsImage(*store_, img);
  ASSERT_TRUE(path) << path.error().message();
  EXPECT_EQ(*path, store_->rootfsDir() + "/" + chainId(img.config.diff_ids).substr(7) + ".erofs");
  EXPECT_EQ(le32At(*path, 1024), 0xE0F5E1E2u);
  struct stat first {};
  ASSERT_EQ(::stat(path->c_str(), &first), 0);

  auto again = rootfsImage(*store_, img);
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, *path);
  struct stat second {};
  ASSERT_EQ(::stat(again->c_str(), &second), 0);
  EXPECT_EQ(first.st_ino, second.st_ino);
  EXPECT_EQ(first.st_mtim.tv_nsec, second.st_mtim.tv_nsec);
  EXPECT_EQ(testing::listing(store_->tmpDir()), "");

  if (::access("/usr/bin/fsck.erofs", X_OK) == 0) {
    std::string out = tmp_.sub("extract");
    auto r = runCommand({"fsck.erofs", "--extract=" + out, *path}, 60s);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->exit_code, 0) << r->output;
    EXPECT_EQ(testing::readFile(out + "/etc/motd"), "hello erofs\n");
    EXPECT_EQ(testing::readFile(out + "/bin/sh"), "#!shell");
  }
}

TEST_F(RootfsTest, ImportBuildsTheRootfsUpFront) {
  LayoutBuilder b;
  b.layers.push_back({makeTar({{"a", 'f', "a"}}), Compression::kNone});
  b.write(tmp_.sub("layout"));
  auto imported = store_->import(tmp_.sub("layout"), ImportOptions{});
  ASSERT_TRUE(imported);
  std::string expect =
      store_->rootfsDir() + "/" + chainId((*imported)[0].config.diff_ids).substr(7) + ".erofs";
  EXPECT_EQ(::access(expect.c_str(), F_OK), 0);
  auto path = rootfsImage(*store_, (*imported)[0]);
  ASSERT_TRUE(path);
  EXPECT_EQ(*path, expect);
}

TEST_F(RootfsTest, SnapshotDirectoriesFlattenWithWhiteouts) {
  std::string lower = tmp_.sub("lower");
  std::string upper = tmp_.sub("upper");
  ASSERT_EQ(::mkdir(lower.c_str(), 0755), 0);
  ASSERT_EQ(::mkdir(upper.c_str(), 0755), 0);
  testing::writeFile(lower + "/keep", "k");
  testing::writeFile(lower + "/gone", "g");
  testing::writeFile(upper + "/new", "n");
  bool root = ::geteuid() == 0;
  if (root) {
    ASSERT_EQ(::mknod((upper + "/gone").c_str(), S_IFCHR | 0, makedev(0, 0)), 0);
  }
  auto path = rootfsImageFromDirs(*store_, {lower}, upper);
  ASSERT_TRUE(path) << path.error().message();
  EXPECT_EQ(le32At(*path, 1024), 0xE0F5E1E2u);
  auto again = rootfsImageFromDirs(*store_, {lower}, upper);
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, *path);

  std::string out = tmp_.sub("extract");
  auto r = runCommand({"fsck.erofs", "--extract=" + out, *path}, 60s);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->exit_code, 0) << r->output;
  EXPECT_EQ(testing::readFile(out + "/keep"), "k");
  EXPECT_EQ(testing::readFile(out + "/new"), "n");
  if (root) {
    EXPECT_NE(::access((out + "/gone").c_str(), F_OK), 0);
  }

  testing::writeFile(upper + "/new", "changed");  // any change gives a new identity
  auto changed = rootfsImageFromDirs(*store_, {lower}, upper);
  ASSERT_TRUE(changed);
  EXPECT_NE(*changed, *path);
}

TEST_F(RootfsTest, ScratchDiskIsSparseExt4) {
  if (::access("/usr/sbin/mkfs.ext4", X_OK) != 0 && ::access("/sbin/mkfs.ext4", X_OK) != 0) {
    GTEST_SKIP() << "mkfs.ext4 is not installed";
  }
  std::string disk = tmp_.sub("scratch.img");
  auto r = makeScratchDisk(disk, 64u << 20);
  ASSERT_TRUE(r) << r.error().message();
  struct stat st {};
  ASSERT_EQ(::stat(disk.c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 64 << 20);
  EXPECT_LT(st.st_blocks * 512, st.st_size);  // sparse
  std::string b = testing::readFile(disk);
  EXPECT_EQ(static_cast<uint8_t>(b[1080]), 0x53);
  EXPECT_EQ(static_cast<uint8_t>(b[1081]), 0xEF);
  EXPECT_FALSE(makeScratchDisk(disk, 64u << 20));  // never overwrites
}

}  // namespace
}  // namespace nv::images
