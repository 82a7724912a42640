// SPDX-License-Identifier: Apache-2.0
// The `image` CLI subcommands against a temp store.
#include "cli/image_commands.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "images/store.h"
#include "tests/unit/images/image_builder.h"

namespace nv::images {
namespace {

using testing::LayoutBuilder;
using testing::makeTar;
using testing::TempDir;

void run(const std::string& root, const std::string& args) {
  CLI::App app("nanovisor");
  cli::addImageCommands(app, [root] { return root; });
  app.parse(args);
}

TEST(ImageCli, ImportLsInspectRm) {
  TempDir tmp;
  LayoutBuilder b;
  b.layers.push_back({makeTar({{"x", 'f', "y"}}), Compression::kNone});
  b.write(tmp.sub("layout"));
  std::string root = tmp.sub("store");
  run(root, "image import " + tmp.sub("layout") + " --name cli:1 --no-rootfs");
  run(root, "image ls");
  run(root, "image inspect cli:1");
  if (::access("/usr/bin/mkfs.erofs", X_OK) == 0) {
    run(root, "image rootfs cli:1");
  }
  auto store = Store::open(root);
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->get("cli:1"));
  EXPECT_THROW(run(root, "image inspect missing"), CLI::RuntimeError);
  EXPECT_THROW(run(root, "image import " + tmp.sub("nonexistent")), CLI::RuntimeError);
  run(root, "image rm cli:1");
  EXPECT_FALSE(store->get("cli:1"));
  EXPECT_THROW(run(root, "image sign cli:1"), CLI::ParseError);  // --key is required
}

}  // namespace
}  // namespace nv::images
