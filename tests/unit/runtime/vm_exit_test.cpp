// SPDX-License-Identifier: Apache-2.0
// vmmExitDescription: the one line the drivers give for how a VMM process ended.
#include <sys/wait.h>

#include <csignal>

#include <gtest/gtest.h>

#include "runtime/vm.h"

namespace nv::runtime {
namespace {

// Wait statuses as waitpid() reports them: exit code in bits 8-15, a fatal signal in 0-6.
constexpr int exited(int code) { return code << 8; }
constexpr int killedBy(int sig) { return sig; }

TEST(VmmExitDescription, Exited_GivesTheStatus) {
  EXPECT_EQ(vmmExitDescription("qemu", exited(1)), "qemu exited with status 1");
  EXPECT_EQ(vmmExitDescription("nanovisor-vmm", exited(0)), "nanovisor-vmm exited with status 0");
}

TEST(VmmExitDescription, Killed_GivesTheSignalNumberAndName) {
  EXPECT_EQ(vmmExitDescription("qemu", killedBy(SIGKILL)), "qemu killed by signal 9 (SIGKILL)");
}

TEST(VmmExitDescription, KilledBySigsys_SaysSeccompViolation) {
  EXPECT_EQ(vmmExitDescription("nanovisor-vmm", killedBy(SIGSYS)),
            "nanovisor-vmm killed by signal 31 (SIGSYS): seccomp violation");
}

}  // namespace
}  // namespace nv::runtime
