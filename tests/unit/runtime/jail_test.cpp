// SPDX-License-Identifier: Apache-2.0
// The jail's pure parts: uid allocation and the checks made before anything starts. (The jail
// itself needs root and is proved on real sandboxes by tests/e2e/security.)
#include "runtime/jail.h"

#include <gtest/gtest.h>

#include "runtime/config.h"

namespace nv::runtime {
namespace {

TEST(Jail, AllocateId_IsInTheDocumentedRange) {
  const uint32_t uid = allocateJailId("0123456789ab");
  EXPECT_GE(uid, kJailIdBase);
  EXPECT_LT(uid, kJailIdBase + kJailIdCount);
}

TEST(Jail, AllocateId_SameIdSameUidWhileFree) {
  EXPECT_EQ(allocateJailId("web"), allocateJailId("web"));
}

TEST(Jail, Check_RootUidIsRefused) {
  JailSpec jail;
  jail.root = "/";
  auto checked = checkJail(jail);
  ASSERT_FALSE(checked);
}

TEST(Jail, Spawn_RelativeProgram_IsRefused) {
  JailSpec jail;
  auto spawned = spawnJailed(jail, SpawnOptions{.argv = {"qemu-system-x86_64"}});
  ASSERT_FALSE(spawned);
  EXPECT_EQ(spawned.error().message(), "jail: the program must be an absolute path");
}

TEST(Jail, SystemFiles_UsrIsReadOnlyExecutable) {
  JailSpec jail;
  addSystemFiles(jail);
  ASSERT_FALSE(jail.mounts.empty());
  EXPECT_EQ(jail.mounts.front().target, "/usr");
  EXPECT_FALSE(jail.mounts.front().writable);
  EXPECT_TRUE(jail.mounts.front().exec);
}

TEST(RuntimeConfig, Jail_OnByDefaultAndTomlTurnsItOff) {
  RuntimeConfig c;
  EXPECT_TRUE(c.jail);
  ASSERT_TRUE(c.applyToml("jail = false\n", "t.toml"));
  EXPECT_FALSE(c.jail);
  auto bad = c.applyToml("jail = \"no\"\n", "t.toml");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message(), "t.toml: 'jail' must be true or false");
}

}  // namespace
}  // namespace nv::runtime
