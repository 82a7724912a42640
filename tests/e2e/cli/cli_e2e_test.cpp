// SPDX-License-Identifier: Apache-2.0
// `nanovisor run/exec/ps/kill/rm/inspect` against real micro-VMs. Each test uses a private
// state dir and image store; after each test no sandbox dir, VMM process or socket is left.
#include <signal.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "common/subprocess.h"

namespace nv {
namespace {

using std::chrono::milliseconds;

struct Env {
  std::string nanovisor;
  std::string root;       // temp dir: state/, images/
  std::string skip;       // non-empty: why the suite cannot run here
};

Env& env() {
  static Env e = [] {
    Env out;
    const char* build = std::getenv("NV_BUILD_DIR");
    if (build == nullptr) {
      out.skip = "run through ctest (NV_BUILD_DIR unset)";
      return out;
    }
    out.nanovisor = std::string(build) + "/bin/nanovisor";
    const std::string share = std::string(build) + "/share/nanovisor/";
    for (const char* f : {"vmlinux", "initramfs.cpio.gz"}) {
      if (!std::filesystem::exists(share + f)) {
        out.skip = share + f + " missing: run 'make kernel initramfs'";
        return out;
      }
    }
    const std::string tar = std::string(build) + "/images/busybox-oci.tar";
    if (!std::filesystem::exists(tar)) {
      out.skip = tar + " missing: run 'make images'";
      return out;
    }
    char tmpl[] = "/tmp/nv-cli-e2e-XXXXXX";
    out.root = ::mkdtemp(tmpl);
    // The libvirt driver's QEMU runs as libvirt-qemu and must reach the image store.
    ::chmod(out.root.c_str(), 0755);
    auto imported = runCommand({out.nanovisor, "--image-root", out.root + "/images", "image",
                                "import", tar, "--name", "busybox"},
                               milliseconds(120000));
    if (!imported || imported->exit_code != 0) {
      out.skip = "importing busybox failed: " + (imported ? imported->output : imported.error().message());
    }
    return out;
  }();
  return e;
}

class CliE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!env().skip.empty()) GTEST_SKIP() << env().skip;
  }
  void TearDown() override {
    if (!env().skip.empty()) return;
    // Nothing may be left behind: no sandbox directories and no VMM of ours.
    std::error_code ec;
    auto state = std::filesystem::path(env().root) / "state";
    size_t left = 0;
    if (std::filesystem::exists(state)) {
      for (const auto& e : std::filesystem::directory_iterator(state, ec)) {
        if (e.is_directory()) ++left;
      }
    }
    EXPECT_EQ(left, expected_leftovers_) << "sandbox directories left in " << state;
    auto qemus = runCommand({"sh", "-c", "pgrep -f '[q]emu-system.*" + env().root + "' | wc -l"},
                            milliseconds(5000));
    EXPECT_EQ(qemus->output, "0\n") << "VMM processes left behind";
  }

  // Runs `nanovisor <args>` through sh (so tests can pipe and redirect); stdout+stderr.
  RunResult nv(const std::string& args, milliseconds timeout = milliseconds(120000)) {
    std::string cmd = env().nanovisor + " --state-dir " + env().root + "/state --image-root " +
                      env().root + "/images " + args;
    auto r = runCommand({"sh", "-c", cmd}, timeout, 64 << 20);
    if (!r) return {.exit_code = -1, .output = r.error().message()};
    return *r;
  }

  size_t expected_leftovers_ = 0;
};

TEST_F(CliE2eTest, Run_EchoPrintsHello) {
  auto r = nv("run --rm busybox echo hello");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "hello\n");
}

TEST_F(CliE2eTest, Run_UnameIsTheGuestKernel) {
  auto r = nv("run --rm busybox uname -r");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("-nanovisor"), std::string::npos) << r.output;
  auto host = runCommand({"uname", "-r"}, milliseconds(5000));
  EXPECT_NE(r.output, host->output);
}

TEST_F(CliE2eTest, Run_ExitStatusIsTheWorkloads) {
  EXPECT_EQ(nv("run --rm busybox sh -c 'exit 7'").exit_code, 7);
}

TEST_F(CliE2eTest, Run_StdinComesBack) {
  auto r = nv("run -i --rm busybox cat < /etc/os-release");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ifstream in("/etc/os-release");
  std::stringstream expected;
  expected << in.rdbuf();
  EXPECT_EQ(r.output, expected.str());
}

TEST_F(CliE2eTest, Run_TenMiBOfStdoutArriveIntact) {
  auto r = nv("run --rm busybox sh -c 'head -c 10485760 /dev/zero | tr \"\\\\0\" x' | sha256sum");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto expected = runCommand({"sh", "-c", "head -c 10485760 /dev/zero | tr '\\0' x | sha256sum"},
                             milliseconds(10000));
  EXPECT_EQ(r.output, expected->output);
}

TEST_F(CliE2eTest, Run_EnvCwdUserAreHonoured) {
  auto r = nv("run --rm -e GREETING=hi -w /tmp -u 65534:65534 busybox sh -c 'echo $GREETING $(pwd) $(id -u):$(id -g)'");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "hi /tmp 65534:65534\n");
}

TEST_F(CliE2eTest, Run_CpusGiveTheVmThatManyCpus) {
  auto r = nv("run --rm --cpus 2 busybox nproc");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "2\n");
}

TEST_F(CliE2eTest, Run_MemoryLimit_OomKillsTheWorkloadNotTheVm) {
  // Holds 200 MiB in a shell variable in a 64 MiB container: the guest's OOM killer ends it.
  auto r = nv("run --rm --memory 64m busybox sh -c 'x=$(head -c 209715200 /dev/zero | tr \"\\\\0\" a); echo survived'");
  EXPECT_EQ(r.exit_code, 137) << r.output;
  EXPECT_EQ(r.output.find("survived"), std::string::npos);
  EXPECT_EQ(nv("run --rm busybox true").exit_code, 0) << "the host cannot start sandboxes any more";
}

TEST_F(CliE2eTest, Running_ExecPsKillRm) {
  auto owner = Subprocess::spawn({.argv = {"sh", "-c",
      env().nanovisor + " --state-dir " + env().root + "/state --image-root " + env().root +
      "/images run --name sb1 busybox sleep 600 > " + env().root + "/sb1.out 2>&1"}});
  ASSERT_TRUE(owner);
  RunResult ps;
  for (int i = 0; i < 600; ++i) {  // boot under TCG takes a few seconds
    ps = nv("ps");
    if (ps.output.find("running") != std::string::npos) break;
    std::this_thread::sleep_for(milliseconds(100));
  }
  ASSERT_NE(ps.output.find("sb1"), std::string::npos) << ps.output;
  EXPECT_NE(ps.output.find("sleep 600"), std::string::npos) << ps.output;

  auto exec = nv("exec sb1 sh -c 'echo from exec; ps -o comm | grep -c sleep'");
  EXPECT_EQ(exec.exit_code, 0) << exec.output;
  EXPECT_EQ(exec.output, "from exec\n1\n");
  EXPECT_EQ(nv("exec sb1 sh -c 'exit 3'").exit_code, 3);

  auto inspect = nv("inspect sb1");
  EXPECT_NE(inspect.output.find("\"status\": \"running\""), std::string::npos) << inspect.output;

  EXPECT_EQ(nv("rm sb1").exit_code, 1) << "rm of a running sandbox needs -f";
  auto killed = nv("kill -s KILL sb1");
  EXPECT_EQ(killed.exit_code, 0) << killed.output;
  auto status = owner->wait(milliseconds(60000));
  ASSERT_TRUE(status);
  EXPECT_EQ(waitStatusToExitCode(*status), 137);

  auto all = nv("ps -a");
  EXPECT_NE(all.output.find("exited (137)"), std::string::npos) << all.output;
  EXPECT_EQ(nv("rm sb1").exit_code, 0);
}

TEST_F(CliE2eTest, TwoSandboxes_DoNotSeeEachOther) {
  auto a = Subprocess::spawn({.argv = {"sh", "-c",
      env().nanovisor + " --state-dir " + env().root + "/state --image-root " + env().root +
      "/images run --rm --name a1 busybox sh -c 'echo marker-a > /tmp/mark; sleep 600'"}});
  ASSERT_TRUE(a);
  for (int i = 0; i < 600 && nv("ps").output.find("a1") == std::string::npos; ++i) {
    std::this_thread::sleep_for(milliseconds(100));
  }
  auto b = nv("run --rm busybox sh -c 'cat /tmp/mark 2>/dev/null; ps -o comm | grep -c sleep'");
  EXPECT_EQ(b.output, "0\n") << b.output;
  EXPECT_EQ(nv("rm -f a1").exit_code, 0);
  (void)a->wait(milliseconds(60000));
}

TEST_F(CliE2eTest, BadInput_OneLineErrorsAndNonZero) {
  auto unknown = nv("run --rm nosuchimage true");
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_NE(unknown.output.find("image 'nosuchimage' not found"), std::string::npos) << unknown.output;
  EXPECT_EQ(std::count(unknown.output.begin(), unknown.output.end(), '\n'), 1) << unknown.output;

  auto flag = nv("run --frobnicate busybox true");
  EXPECT_NE(flag.exit_code, 0);
  EXPECT_NE(flag.output.find("--frobnicate"), std::string::npos) << flag.output;

  auto missing = nv("run --rm busybox /no/such/binary");
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.output.find("/no/such/binary"), std::string::npos) << missing.output;

  auto no_kernel = runCommand({"sh", "-c", "NANOVISOR_KERNEL=/nonexistent/vmlinux " +
                                               env().nanovisor + " --state-dir " + env().root +
                                               "/state --image-root " + env().root +
                                               "/images run --rm busybox true"},
                              milliseconds(60000));
  EXPECT_NE(no_kernel->exit_code, 0);
  EXPECT_NE(no_kernel->output.find("make kernel"), std::string::npos) << no_kernel->output;

  auto libvirt_down = runCommand(
      {"sh", "-c", std::string("printf 'libvirt_uri = \"qemu+unix:///system?socket=/nonexistent\"\\n' > ") +
                       env().root + "/lv.toml && " + env().nanovisor + " --config " + env().root +
                       "/lv.toml --hypervisor libvirt --state-dir " + env().root +
                       "/state --image-root " + env().root + "/images run --rm busybox true"},
      milliseconds(60000));
  EXPECT_NE(libvirt_down->exit_code, 0);
  EXPECT_NE(libvirt_down->output.find("libvirtd -d"), std::string::npos) << libvirt_down->output;
}

TEST_F(CliE2eTest, Libvirt_RunEchoSmoke) {
  auto r = nv("--hypervisor libvirt run --rm busybox sh -c 'echo hello; uname -r'");
  if (r.output.find("not reachable") != std::string::npos) GTEST_SKIP() << r.output;
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.rfind("hello\n", 0), 0u) << r.output;
  EXPECT_NE(r.output.find("-nanovisor"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace nv
