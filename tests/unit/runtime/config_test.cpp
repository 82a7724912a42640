// SPDX-License-Identifier: Apache-2.0
#include "runtime/config.h"

#include <gtest/gtest.h>

namespace nv::runtime {
namespace {

TEST(RuntimeConfig, Toml_OverridesDefaults) {
  RuntimeConfig c;
  ASSERT_TRUE(c.applyToml("hypervisor = \"libvirt\"\ncpus = 2\nmemory_mib = 512\n", "t.toml"));
  EXPECT_EQ(c.hypervisor, "libvirt");
  EXPECT_EQ(c.cpus, 2u);
  EXPECT_EQ(c.memory_mib, 512u);
}

TEST(RuntimeConfig, UnknownKey_IsNamed) {
  RuntimeConfig c;
  auto r = c.applyToml("hypervisr = \"qemu\"\n", "t.toml");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "t.toml: unknown setting 'hypervisr'");
}

TEST(RuntimeConfig, SyntaxError_HasLine) {
  RuntimeConfig c;
  auto r = c.applyToml("cpus = 1\nmemory_mib = = 3\n", "t.toml");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message().rfind("t.toml:2:", 0), 0u) << r.error().message();
}

TEST(RuntimeConfig, BadValues_AreRefused) {
  RuntimeConfig c;
  EXPECT_FALSE(c.applyToml("hypervisor = \"xen\"\n", "t"));
  EXPECT_FALSE(c.applyToml("cpus = 0\n", "t"));
  EXPECT_FALSE(c.applyToml("memory_mib = \"lots\"\n", "t"));
}

TEST(RuntimeConfig, MissingExplicitFile_IsAnError) {
  auto r = RuntimeConfig::load("/nonexistent/config.toml", /*path_is_explicit=*/true);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().is(Errc::kNotFound));
}

}  // namespace
}  // namespace nv::runtime
