// SPDX-License-Identifier: Apache-2.0
#include "common/subprocess.h"

#include <signal.h>

#include <gtest/gtest.h>

namespace nv {
namespace {

using std::chrono::milliseconds;

TEST(Subprocess, RunCommand_CapturesOutputAndExitCode) {
  auto r = runCommand({"sh", "-c", "echo out; echo err >&2; exit 3"}, milliseconds(5000));
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->output, "out\nerr\n");
}

TEST(Subprocess, RunCommand_OutputIsBounded) {
  auto r = runCommand({"sh", "-c", "yes | head -c 100000"}, milliseconds(5000), 1000);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->output.size(), 1000u);
}

TEST(Subprocess, RunCommand_Timeout_IsReportedAndChildKilled) {
  auto r = runCommand({"sleep", "30"}, milliseconds(100));
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().is(Errc::kTimeout)) << r.error().message();
}

TEST(Subprocess, Spawn_MissingProgram_IsENOENT) {
  auto child = Subprocess::spawn({.argv = {"/nonexistent/program"}});
  ASSERT_FALSE(child);
  EXPECT_TRUE(child.error().isErrno(ENOENT));
  EXPECT_NE(child.error().message().find("/nonexistent/program"), std::string::npos);
}

TEST(Subprocess, Signal_KilledChildReports128PlusSignal) {
  auto child = Subprocess::spawn({.argv = {"sleep", "30"}});
  ASSERT_TRUE(child);
  ASSERT_TRUE(child->signal(SIGTERM));
  auto status = child->wait(milliseconds(5000));
  ASSERT_TRUE(status) << status.error().message();
  EXPECT_EQ(waitStatusToExitCode(*status), 143);
}

TEST(Subprocess, Destructor_KillsRunningChild) {
  pid_t pid = 0;
  {
    auto child = Subprocess::spawn({.argv = {"sleep", "30"}});
    ASSERT_TRUE(child);
    pid = child->pid();
  }
  EXPECT_NE(::kill(pid, 0), 0);  // reaped: no such process
}

TEST(Subprocess, ExtraEnv_ReachesChild) {
  auto r = runCommand({"sh", "-c", "echo $NV_TEST_VAR"}, milliseconds(5000));
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->output, "\n");
  auto child = Subprocess::spawn({.argv = {"sh", "-c", "test \"$NV_TEST_VAR\" = yes"},
                                  .extra_env = {"NV_TEST_VAR=yes"}});
  ASSERT_TRUE(child);
  EXPECT_EQ(waitStatusToExitCode(child->wait(milliseconds(5000)).value()), 0);
}

}  // namespace
}  // namespace nv
