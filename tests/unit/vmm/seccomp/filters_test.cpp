// SPDX-License-Identifier: Apache-2.0
// nanovisor-vmm's seccomp allow-lists: each class compiles, the lists hold what the docs
// say, and a filter really kills the process with SIGSYS on a syscall it does not allow
// (checked in a forked child, which is the thing under test here).
#include "vmm/seccomp/filters.h"

#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <set>
#include <string>

namespace nv::vmm::seccomp {
namespace {

std::set<std::string> names(ThreadClass cls) {
  std::set<std::string> out;
  for (const Rule& rule : allowList(cls)) {
    out.insert(rule.name);
  }
  return out;
}

// Forks a child that installs `cls`'s filter, then runs `body` and ends with the raw exit
// syscall (allowed in every class); returns the child's wait status.
template <class Body>
int inFilteredChild(ThreadClass cls, Body body) {
  pid_t pid = ::fork();
  if (pid == 0) {
    if (!install(cls)) {
      ::_exit(100);
    }
    body();
    ::syscall(SYS_exit, 0);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return status;
}

TEST(SeccompFilters, EveryClass_CompilesToBpf) {
  for (ThreadClass cls : kAllThreadClasses) {
    auto bpf = compile(cls);
    ASSERT_TRUE(bpf) << name(cls) << ": " << bpf.error().message();
    EXPECT_GT(bpf->size(), 0U) << name(cls);
    EXPECT_EQ(bpf->size() % 8, 0U) << name(cls) << ": not whole sock_filter instructions";
  }
}

// The counts docs/security.md gives; change both together.
TEST(SeccompFilters, Lists_HaveTheDocumentedSizes) {
  EXPECT_EQ(allowList(ThreadClass::kVmm).size(), 32U);
  EXPECT_EQ(allowList(ThreadClass::kVcpu).size(), 14U);
  EXPECT_EQ(allowList(ThreadClass::kApi).size(), 27U);
}

TEST(SeccompFilters, Lists_HaveNoDuplicates) {
  for (ThreadClass cls : kAllThreadClasses) {
    EXPECT_EQ(names(cls).size(), allowList(cls).size()) << name(cls);
  }
}

TEST(SeccompFilters, VcpuList_IoctlOnlyKvmRunAndNoFilesOrSockets) {
  auto vcpu = names(ThreadClass::kVcpu);
  const auto& rules = allowList(ThreadClass::kVcpu);
  auto ioctl = std::find_if(rules.begin(), rules.end(),
                            [](const Rule& r) { return std::string(r.name) == "ioctl"; });
  ASSERT_NE(ioctl, rules.end());
  ASSERT_TRUE(ioctl->arg.has_value());
  EXPECT_EQ(*ioctl->arg, 1U);
  EXPECT_EQ(ioctl->values, std::vector<uint64_t>{0xAE80});  // KVM_RUN = _IO(KVMIO 0xAE, 0x80)
  for (const char* absent : {"openat", "socket", "connect", "accept", "execve", "clone",
                             "clone3", "fork", "ptrace", "mount", "getppid"}) {
    EXPECT_EQ(vcpu.count(absent), 0U) << absent;
  }
}

TEST(SeccompFilters, NoClass_AllowsExecForkOrTheTestHookSyscall) {
  for (ThreadClass cls : kAllThreadClasses) {
    auto list = names(cls);
    for (const char* absent : {"execve", "execveat", "clone", "clone3", "fork", "vfork",
                               "ptrace", "getppid", "open", "mount", "setuid"}) {
      EXPECT_EQ(list.count(absent), 0U) << name(cls) << " allows " << absent;
    }
  }
}

TEST(SeccompFilters, ParseThreadClass_KnowsTheNamesAndMainAlias) {
  EXPECT_EQ(parseThreadClass("vmm"), ThreadClass::kVmm);
  EXPECT_EQ(parseThreadClass("main"), ThreadClass::kVmm);
  EXPECT_EQ(parseThreadClass("vcpu"), ThreadClass::kVcpu);
  EXPECT_EQ(parseThreadClass("api"), ThreadClass::kApi);
  EXPECT_EQ(parseThreadClass("guest"), std::nullopt);
}

TEST(SeccompFilters, PolicyFromEnvironment_UnknownHookIsAnError) {
  ::setenv(kTestHookEnv, "bogus", 1);
  auto policy = Policy::fromEnvironment(true);
  ::unsetenv(kTestHookEnv);
  ASSERT_FALSE(policy);
  EXPECT_NE(policy.error().message().find("want vmm, vcpu or api"), std::string::npos);
}

TEST(SeccompFilters, PolicyFromEnvironment_NoHookByDefault) {
  ::unsetenv(kTestHookEnv);
  auto policy = Policy::fromEnvironment(true);
  ASSERT_TRUE(policy);
  EXPECT_TRUE(policy->enabled);
  EXPECT_EQ(policy->test_forbidden, std::nullopt);
}

TEST(SeccompFilters, InstalledVcpuFilter_ForbiddenSyscallKillsWithSigsys) {
  int status = inFilteredChild(ThreadClass::kVcpu, [] { forbiddenSyscallForTest(); });
  ASSERT_TRUE(WIFSIGNALED(status)) << "child status " << status;
  EXPECT_EQ(WTERMSIG(status), SIGSYS);
}

TEST(SeccompFilters, InstalledApiFilter_SocketKillsWithSigsys) {
  int status = inFilteredChild(ThreadClass::kApi,
                               [] { (void)::syscall(SYS_socket, AF_UNIX, SOCK_STREAM, 0); });
  ASSERT_TRUE(WIFSIGNALED(status)) << "child status " << status;
  EXPECT_EQ(WTERMSIG(status), SIGSYS);
}

TEST(SeccompFilters, InstalledVmmFilter_InetSocketKillsButUnixSocketIsAllowed) {
  int inet = inFilteredChild(ThreadClass::kVmm,
                             [] { (void)::syscall(SYS_socket, AF_INET, SOCK_STREAM, 0); });
  ASSERT_TRUE(WIFSIGNALED(inet)) << "child status " << inet;
  EXPECT_EQ(WTERMSIG(inet), SIGSYS);
  int unix_socket = inFilteredChild(ThreadClass::kVmm, [] {
    if (::syscall(SYS_socket, AF_UNIX, SOCK_STREAM, 0) < 0) ::syscall(SYS_exit, 3);
  });
  ASSERT_TRUE(WIFEXITED(unix_socket)) << "child status " << unix_socket;
  EXPECT_EQ(WEXITSTATUS(unix_socket), 0);
}

TEST(SeccompFilters, InstalledVcpuFilter_AllowedSyscallsWork) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  int status = inFilteredChild(ThreadClass::kVcpu, [&] {
    if (::syscall(SYS_write, fds[1], "ok", 2) != 2) ::syscall(SYS_exit, 3);
    (void)::syscall(SYS_getpid);
  });
  ::close(fds[1]);
  char buf[2] = {};
  EXPECT_EQ(::read(fds[0], buf, 2), 2);
  ::close(fds[0]);
  ASSERT_TRUE(WIFEXITED(status)) << "child status " << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(std::string(buf, 2), "ok");
}

TEST(SeccompFilters, EnterThreadClass_OffRunsTheHookUnfiltered) {
  // --seccomp off with the hook set: getppid is just a syscall, the child exits normally.
  pid_t pid = ::fork();
  if (pid == 0) {
    enterThreadClass(Policy{.enabled = false, .test_forbidden = ThreadClass::kVcpu},
                     ThreadClass::kVcpu);
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << "child status " << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace nv::vmm::seccomp
