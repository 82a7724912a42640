// SPDX-License-Identifier: Apache-2.0
#include "runtime/state.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <fstream>

#include <gtest/gtest.h>

namespace nv::runtime {
namespace {

class StateStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/nv-state-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  std::filesystem::path root_;
};

TEST_F(StateStoreTest, SaveLoad_RoundTrips) {
  StateStore store(root_ / "run");
  ASSERT_TRUE(store.create("abc123"));
  SandboxState s;
  s.id = "abc123";
  s.image = "busybox";
  s.command = {"echo", "hi"};
  s.status = "exited";
  s.exit_code = 7;
  ASSERT_TRUE(store.save(s));
  auto loaded = store.load("abc123");
  ASSERT_TRUE(loaded) << loaded.error().message();
  EXPECT_EQ(loaded->command, s.command);
  EXPECT_EQ(loaded->exit_code, 7);
  EXPECT_EQ(loaded->status, "exited");
}

TEST_F(StateStoreTest, Create_DirIsPrivateAndIdUnique) {
  StateStore store(root_);
  auto dir = store.create("one");
  ASSERT_TRUE(dir);
  struct stat st {};
  ASSERT_EQ(::stat(dir->c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  auto again = store.create("one");
  ASSERT_FALSE(again);
  EXPECT_TRUE(again.error().is(Errc::kAlreadyExists));
}

TEST_F(StateStoreTest, Resolve_UniquePrefixOrError) {
  StateStore store(root_);
  for (const char* id : {"aa11", "aa22", "bb33"}) {
    ASSERT_TRUE(store.create(id));
    SandboxState s;
    s.id = id;
    ASSERT_TRUE(store.save(s));
  }
  EXPECT_EQ(store.resolve("bb").value(), "bb33");
  EXPECT_EQ(store.resolve("aa22").value(), "aa22");
  EXPECT_TRUE(store.resolve("aa").error().is(Errc::kInvalidArgument));
  EXPECT_TRUE(store.resolve("cc").error().is(Errc::kNotFound));
}

TEST_F(StateStoreTest, Remove_DeletesEverything) {
  StateStore store(root_);
  auto dir = store.create("gone");
  ASSERT_TRUE(dir);
  std::ofstream(*dir / "console.log") << "x";
  ASSERT_TRUE(store.remove("gone"));
  EXPECT_FALSE(std::filesystem::exists(*dir));
  EXPECT_TRUE(store.list()->empty());
}

TEST_F(StateStoreTest, CorruptStateFile_IsAnErrorNotACrash) {
  StateStore store(root_);
  auto dir = store.create("bad");
  ASSERT_TRUE(dir);
  std::ofstream(*dir / "state.json") << "{\"id\": 5}";
  auto loaded = store.load("bad");
  ASSERT_FALSE(loaded);
  EXPECT_TRUE(loaded.error().is(Errc::kInvalidArgument));
}

TEST(SandboxState, RunningWithDeadOwner_ReadsDead) {
  SandboxState s;
  s.status = "running";
  s.owner_pid = 0x3ffffff0;  // above pid_max: no such process
  EXPECT_EQ(s.liveStatus(), "dead");
  s.owner_pid = ::getpid();
  EXPECT_EQ(s.liveStatus(), "running");
}

TEST(SandboxId, Is12HexDigits) {
  auto id = newSandboxId();
  EXPECT_EQ(id.size(), 12u);
  EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos);
}

}  // namespace
}  // namespace nv::runtime
