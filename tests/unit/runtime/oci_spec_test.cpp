// SPDX-License-Identifier: Apache-2.0
#include "runtime/oci_spec.h"

#include <gtest/gtest.h>

namespace nv::runtime {
namespace {

ImageProcessDefaults busybox() {
  return {.env = {"PATH=/bin", "LANG=C"}, .entrypoint = {}, .cmd = {"sh"}, .working_dir = "",
          .user = ""};
}

TEST(OciSpec, Args_ReplaceImageCmd) {
  auto spec = buildOciSpec(busybox(), {.args = {"echo", "hi"}});
  ASSERT_TRUE(spec);
  EXPECT_EQ((*spec)["process"]["args"], nlohmann::json({"echo", "hi"}));
  EXPECT_EQ((*spec)["process"]["cwd"], "/");
}

TEST(OciSpec, NoArgs_UsesEntrypointPlusCmd) {
  auto image = busybox();
  image.entrypoint = {"/bin/tini", "--"};
  auto spec = buildOciSpec(image, {});
  ASSERT_TRUE(spec);
  EXPECT_EQ((*spec)["process"]["args"], nlohmann::json({"/bin/tini", "--", "sh"}));
}

TEST(OciSpec, NoCommandAnywhere_IsAnError) {
  auto image = busybox();
  image.cmd.clear();
  auto spec = buildOciSpec(image, {});
  ASSERT_FALSE(spec);
  EXPECT_NE(spec.error().message().find("no command"), std::string::npos);
}

TEST(OciSpec, Env_UserOverridesImageKeepsOrder) {
  auto spec = buildOciSpec(busybox(), {.args = {"env"}, .env = {"LANG=en", "X=1"}});
  ASSERT_TRUE(spec);
  EXPECT_EQ((*spec)["process"]["env"], nlohmann::json({"PATH=/bin", "LANG=en", "X=1"}));
}

TEST(OciSpec, BadEnv_IsNamed) {
  auto spec = buildOciSpec(busybox(), {.args = {"env"}, .env = {"NOEQUALS"}});
  ASSERT_FALSE(spec);
  EXPECT_EQ(spec.error().message(), "environment entry 'NOEQUALS' is not KEY=VALUE");
}

TEST(OciSpec, User_NumericOrName) {
  auto numeric = buildOciSpec(busybox(), {.args = {"id"}, .user = "1000:100"});
  EXPECT_EQ((*numeric)["process"]["user"], nlohmann::json({{"uid", 1000}, {"gid", 100}}));
  auto named = buildOciSpec(busybox(), {.args = {"id"}, .user = "nobody"});
  EXPECT_EQ((*named)["process"]["user"]["username"], "nobody");
}

TEST(OciSpec, Resources_MemoryCpuPids) {
  auto spec = buildOciSpec(busybox(), {.args = {"true"}, .memory_limit_bytes = 64 << 20,
                                       .cpus = 0.5, .pids_limit = 100});
  ASSERT_TRUE(spec);
  const auto& r = (*spec)["linux"]["resources"];
  EXPECT_EQ(r["memory"]["limit"], 64 << 20);
  EXPECT_EQ(r["cpu"]["quota"], 50000);
  EXPECT_EQ(r["cpu"]["period"], 100000);
  EXPECT_EQ(r["pids"]["limit"], 100);
}

TEST(OciSpec, RelativeCwd_IsRefused) {
  EXPECT_FALSE(buildOciSpec(busybox(), {.args = {"pwd"}, .cwd = "tmp"}));
}

}  // namespace
}  // namespace nv::runtime
