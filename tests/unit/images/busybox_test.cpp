// SPDX-License-Identifier: Apache-2.0
// The default image: images/busybox/build.sh output imports into the store and unpacks.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>

#include "common/subprocess.h"
#include "images/rootfs.h"
#include "images/store.h"
#include "tests/unit/images/image_builder.h"

namespace nv::images {
namespace {

using namespace std::chrono_literals;

TEST(BusyboxImage, BuildsReproduciblyAndImports) {
  const char* src = std::getenv("NV_SOURCE_DIR");
  if (src == nullptr) {
    GTEST_SKIP() << "NV_SOURCE_DIR is not set (run through ctest)";
  }
  if (::access("/bin/busybox", X_OK) != 0) {
    GTEST_SKIP() << "busybox-static is not installed";
  }
  testing::TempDir tmp;
  std::string script = std::string(src) + "/images/busybox/build.sh";
  auto a = runCommand({script, tmp.sub("a")}, 120s);
  ASSERT_TRUE(a);
  ASSERT_EQ(a->exit_code, 0) << a->output;
  auto b = runCommand({script, tmp.sub("b")}, 120s);
  ASSERT_TRUE(b);
  ASSERT_EQ(b->exit_code, 0) << b->output;
  EXPECT_EQ(testing::readFile(tmp.sub("a/busybox-oci.tar")),
            testing::readFile(tmp.sub("b/busybox-oci.tar")));

  auto store = Store::open(tmp.sub("store"));
  ASSERT_TRUE(store);
  ImportOptions opts;
  opts.build_rootfs = ::access("/usr/bin/mkfs.erofs", X_OK) == 0;
  auto r = store->import(tmp.sub("a/busybox-oci.tar"), opts);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ((*r)[0].name, "docker.io/library/busybox:latest");
  EXPECT_EQ((*r)[0].config.cmd, std::vector<std::string>{"sh"});
  ASSERT_TRUE(store->get("busybox"));  // short name resolves to docker.io/library/
  // The layout directory imports too (same digest, nothing new to store).
  auto again = store->import(tmp.sub("a/busybox-oci"), opts);
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_EQ((*again)[0].digest, (*r)[0].digest);

  if (opts.build_rootfs && ::access("/usr/bin/fsck.erofs", X_OK) == 0) {
    auto img = rootfsImage(*store, (*r)[0]);
    ASSERT_TRUE(img);
    auto x = runCommand({"fsck.erofs", "--extract=" + tmp.sub("x"), *img}, 60s);
    ASSERT_TRUE(x);
    ASSERT_EQ(x->exit_code, 0) << x->output;
    struct stat st {};
    ASSERT_EQ(::lstat(tmp.sub("x/bin/sh").c_str(), &st), 0);
    EXPECT_TRUE(S_ISLNK(st.st_mode));
    ASSERT_EQ(::stat(tmp.sub("x/bin/busybox").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0755u);
    EXPECT_EQ(testing::readFile(tmp.sub("x/etc/group")).substr(0, 5), "root:");
    ASSERT_EQ(::stat(tmp.sub("x/tmp").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 01777u);
  }
}

}  // namespace
}  // namespace nv::images
