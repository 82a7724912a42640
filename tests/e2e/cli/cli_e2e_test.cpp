// SPDX-License-Identifier: Apache-2.0
// `nanovisor run/exec/ps/kill/rm/inspect` against real micro-VMs. Each test uses a private
// state dir and image store; after each test no sandbox dir, VMM process or socket is left.
#include <signal.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "common/subprocess.h"
#include "tests/support/nanovisor_env.h"

namespace nv {
namespace {

using std::chrono::milliseconds;

using Env = test::NanovisorEnv;

Env& env() {
  static Env e = test::makeNanovisorEnv("cli-e2e");
  return e;
}

// Command lines of processes that belong to the test root: it appears in their command line,
// or their root or working directory is below it (a jailed VMM).
std::string processesUnderRoot() {
  std::string found;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string pid = entry.path().filename();
    if (pid.find_first_not_of("0123456789") != std::string::npos || pid == std::to_string(::getpid())) {
      continue;
    }
    std::ifstream f(entry.path() / "cmdline");
    std::string cmdline(std::istreambuf_iterator<char>(f), {});
    std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
    bool ours = cmdline.find(env().root) != std::string::npos;
    for (const char* link : {"root", "cwd"}) {
      auto target = std::filesystem::read_symlink(entry.path() / link, ec);
      ours = ours || (!ec && target.string().rfind(env().root, 0) == 0);
    }
    if (ours) found += pid + ": " + cmdline + "\n";
  }
  return found;
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
    // No VMM, supervisor or helper of ours (naming the test root, or jailed below it), no mount.
    EXPECT_EQ(processesUnderRoot(), "") << "processes left behind";
    std::ifstream mountinfo("/proc/self/mountinfo");
    const std::string mounts(std::istreambuf_iterator<char>(mountinfo), {});
    EXPECT_EQ(mounts.find(env().root), std::string::npos) << "mounts left under " << env().root;
  }

  // Runs `nanovisor <args>` through sh (so tests can pipe and redirect); stdout+stderr.
  RunResult nv(const std::string& args, milliseconds timeout = milliseconds(120000)) {
    std::string cmd = env().nanovisor + " --state-dir " + env().root + "/state --image-root " +
                      env().root + "/images " + args;
    auto r = runCommand({"sh", "-c", cmd}, timeout, 64 << 20);
    if (!r) return {.exit_code = -1, .output = r.error().message()};
    return *r;
  }

  // Starts `nanovisor <args>` in the background (an attached `run` that owns its sandbox).
  Result<Subprocess> nvBackground(const std::string& args) {
    return Subprocess::spawn({.argv = {"sh", "-c",
        env().nanovisor + " --state-dir " + env().root + "/state --image-root " + env().root +
        "/images " + args}});
  }

  // Polls `ps` (boot under TCG takes a few seconds) until sandbox `name` is listed with
  // `status`; returns the last `ps -a` output.
  std::string waitForStatus(const std::string& name, const std::string& status) {
    RunResult ps;
    for (int i = 0; i < 600; ++i) {
      ps = nv("ps -a");
      std::istringstream lines(ps.output);
      for (std::string line; std::getline(lines, line);) {
        if (line.rfind(name + " ", 0) == 0 && line.find(status) != std::string::npos) {
          return ps.output;
        }
      }
      std::this_thread::sleep_for(milliseconds(100));
    }
    return ps.output;
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
  auto owner =
      nvBackground("run --name sb1 busybox sleep 600 > " + env().root + "/sb1.out 2>&1");
  ASSERT_TRUE(owner);
  const std::string ps = waitForStatus("sb1", "running");
  ASSERT_NE(ps.find("sb1"), std::string::npos) << ps;
  EXPECT_NE(ps.find("sleep 600"), std::string::npos) << ps;

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

TEST_F(CliE2eTest, Detached_LogsExecPsKillRm) {
  // run -d returns once the workload runs; the supervisor it leaves owns the VM.
  auto run = nv("run -d --name x busybox sh -c 'echo started; echo to-stderr >&2; sleep 600'");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(run.output, "x\n");
  const auto dir = std::filesystem::path(env().root) / "state" / "x";

  RunResult logs;
  for (int i = 0; i < 600; ++i) {  // output reaches the log asynchronously
    logs = nv("logs x");
    if (logs.output.find("to-stderr") != std::string::npos) break;
    std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_EQ(logs.exit_code, 0) << logs.output;
  EXPECT_NE(logs.output.find("started\n"), std::string::npos) << logs.output;
  EXPECT_NE(logs.output.find("to-stderr\n"), std::string::npos) << logs.output;

  auto exec = nv("exec x echo hi");
  EXPECT_EQ(exec.exit_code, 0) << exec.output;
  EXPECT_EQ(exec.output, "hi\n");
  const std::string ps = waitForStatus("x", "running");
  EXPECT_NE(ps.find("\nx "), std::string::npos) << ps;
  EXPECT_NE(ps.find("running"), std::string::npos) << ps;

  auto killed = nv("kill x");
  EXPECT_EQ(killed.exit_code, 0) << killed.output;
  const std::string exited = waitForStatus("x", "exited (137)");
  EXPECT_NE(exited.find("exited (137)"), std::string::npos) << exited;
  EXPECT_FALSE(std::filesystem::exists(dir / "api.sock"));

  auto rm = nv("rm x");
  EXPECT_EQ(rm.exit_code, 0) << rm.output;
  EXPECT_FALSE(std::filesystem::exists(dir)) << "state dir (and its sockets) left behind";
  // TearDown checks that no QEMU of ours is left.
}

TEST_F(CliE2eTest, Detached_LogsFollowEndsWithTheWorkload) {
  auto run = nv("run -d --name f busybox sh -c 'echo one; sleep 3; echo two >&2; exit 5'");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  auto logs = nv("logs -f f");
  EXPECT_EQ(logs.exit_code, 0) << logs.output;
  EXPECT_EQ(logs.output, "one\ntwo\n");
  const std::string ps = waitForStatus("f", "exited (5)");
  EXPECT_NE(ps.find("exited (5)"), std::string::npos) << ps;
  EXPECT_EQ(nv("rm f").exit_code, 0);
}

// A workload flooding stdout cannot fill the host's disk: output.log rotates at
// --log-max-size, one older file kept; `logs` prints both, the newest output last.
TEST_F(CliE2eTest, Detached_OutputFlood_LogIsBoundedAndLogsEndsWithTheNewest) {
  auto run = nv("run -d --log-max-size 64k --name flood busybox sh -c "
                "'seq 1 200000; echo the-end'");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const std::string ps = waitForStatus("flood", "exited (0)");
  EXPECT_NE(ps.find("exited (0)"), std::string::npos) << ps;
  const auto dir = std::filesystem::path(env().root) / "state" / "flood";
  EXPECT_LE(std::filesystem::file_size(dir / "output.log"), 64u << 10);
  EXPECT_LE(std::filesystem::file_size(dir / "output.log.1"), 64u << 10);
  auto logs = nv("logs flood");
  EXPECT_EQ(logs.exit_code, 0);
  EXPECT_GT(logs.output.size(), 64u << 10);
  EXPECT_LE(logs.output.size(), 128u << 10);
  EXPECT_TRUE(logs.output.ends_with("199999\n200000\nthe-end\n"))
      << logs.output.substr(logs.output.size() - std::min<size_t>(logs.output.size(), 100));
  auto bad = nv("run -d --log-max-size 1k busybox true");
  EXPECT_EQ(bad.exit_code, 125);
  EXPECT_EQ(bad.output, "nanovisor: --log-max-size '1k': expected a size of at least 4k, e.g. 32m\n");
  EXPECT_EQ(nv("rm flood").exit_code, 0);
}

TEST_F(CliE2eTest, Detached_RmRemovesTheSandboxOnExit) {
  auto run = nv("run -d --rm --name r busybox true");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const auto dir = std::filesystem::path(env().root) / "state" / "r";
  for (int i = 0; i < 600 && std::filesystem::exists(dir); ++i) {
    std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_FALSE(std::filesystem::exists(dir));
  EXPECT_EQ(nv("ps -a").output.find("\nr "), std::string::npos);
}

TEST_F(CliE2eTest, Detached_StartFailureIsOneLineAndNonZero) {
  auto r = nv("run -d --rm busybox /no/such/binary");
  EXPECT_EQ(r.exit_code, 125) << r.output;
  EXPECT_NE(r.output.find("/no/such/binary"), std::string::npos) << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
}

// The first line of a host file, or "<missing>".
std::string firstLine(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::string line = "<missing>";
  if (in) std::getline(in, line);
  return line;
}

TEST_F(CliE2eTest, Volume_ReadOnlyHostDirIsReadableNotWritable) {
  const auto host = std::filesystem::path(env().root) / "vol-ro";
  std::filesystem::create_directories(host / "sub");
  std::ofstream(host / "sub" / "f.txt") << "from the host\n";
  auto r = nv("run --rm -v " + host.string() + ":/data:ro busybox sh -c "
              "'cat /data/sub/f.txt; echo changed > /data/sub/f.txt || echo write-refused; "
              "touch /data/new || echo create-refused'");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("from the host\n"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("write-refused"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("create-refused"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Read-only file system"), std::string::npos) << r.output;
  EXPECT_EQ(firstLine(host / "sub" / "f.txt"), "from the host");
  EXPECT_FALSE(std::filesystem::exists(host / "new"));
}

TEST_F(CliE2eTest, Volume_ReadOnlyStaysReadOnlyForAContainerRootRemount) {
  // Even a remount of the bind by the container's root cannot make it writable: the guest's
  // 9p mount is read-only and QEMU serves it readonly=on.
  const auto host = std::filesystem::path(env().root) / "vol-ro-remount";
  std::filesystem::create_directories(host);
  auto r = nv("run --rm -v " + host.string() + ":/data:ro busybox sh -c "
              "'mount -o remount,rw /data 2>/dev/null; echo x > /data/planted'");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.exit_code, 125) << r.output;  // the workload failed, not nanovisor
  EXPECT_FALSE(std::filesystem::exists(host / "planted"));
}

TEST_F(CliE2eTest, Volume_WritesLandOnTheHostOwnedByTheDirectorysOwner) {
  const auto host = std::filesystem::path(env().root) / "vol-rw";
  std::filesystem::create_directories(host);
  std::ofstream(host / "old.txt") << "before\n";
  auto r = nv("run --rm -v " + host.string() + " busybox true");  // no CTRDIR: refused
  EXPECT_EQ(r.exit_code, 125) << r.output;
  r = nv("run --rm -v " + host.string() + ":/data busybox sh -c "
         "'cat /data/old.txt; echo from the guest > /data/new.txt; mkdir /data/d; "
         "echo deep > /data/d/f; echo appended >> /data/old.txt; rm /data/old.txt.gone 2>/dev/null;"
         " echo done'");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "before\ndone\n");
  EXPECT_EQ(firstLine(host / "new.txt"), "from the guest");
  EXPECT_EQ(firstLine(host / "d" / "f"), "deep");
  std::ifstream old(host / "old.txt");
  const std::string all(std::istreambuf_iterator<char>(old), {});
  EXPECT_EQ(all, "before\nappended\n");
  struct stat st {};
  ASSERT_EQ(::stat((host / "new.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u) << "the directory's owner (root), not the VMM's jail uid";
  EXPECT_EQ(st.st_gid, 0u);
  EXPECT_EQ(st.st_mode & 06000, 0u);
}

TEST_F(CliE2eTest, Volume_NonRootOwnedDirectory_FilesBelongToItsOwner) {
  // uid/gid 4321 stand for the host user who owns the directory (no account needed).
  const auto host = std::filesystem::path(env().root) / "vol-user";
  std::filesystem::create_directories(host);
  ASSERT_EQ(::chown(host.c_str(), 4321, 4321), 0);
  auto r = nv("run --rm -v " + host.string() + ":/work:rw busybox sh -c "
              "'echo mine > /work/f && mkdir /work/d && echo ok'");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  struct stat st {};
  ASSERT_EQ(::stat((host / "f").c_str(), &st), 0) << r.output;
  EXPECT_EQ(st.st_uid, 4321u);
  EXPECT_EQ(st.st_gid, 4321u);
  ASSERT_EQ(::stat((host / "d").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 4321u);
  EXPECT_EQ(firstLine(host / "f"), "mine");
}

TEST_F(CliE2eTest, Volume_HostChangesAreSeenLiveByTheContainer) {
  const auto host = std::filesystem::path(env().root) / "vol-live";
  std::filesystem::create_directories(host);
  std::ofstream(host / "f") << "one\n";
  auto run = nv("run -d --name live -v " + host.string() + ":/data busybox sleep 600");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(nv("exec live cat /data/f").output, "one\n");
  std::ofstream(host / "f", std::ios::trunc) << "two\n";
  std::ofstream(host / "added") << "new file\n";
  EXPECT_EQ(nv("exec live cat /data/f /data/added").output, "two\nnew file\n");
  std::filesystem::remove(host / "added");
  EXPECT_NE(nv("exec live cat /data/added").exit_code, 0);
  auto write = nv("exec live sh -c 'echo three > /data/f'");
  EXPECT_EQ(write.exit_code, 0) << write.output;
  EXPECT_EQ(firstLine(host / "f"), "three");
  EXPECT_EQ(nv("rm -f live").exit_code, 0);
}

TEST_F(CliE2eTest, Volume_UnknownModeOrMissingDir_OneLineError125) {
  const auto host = std::filesystem::path(env().root) / "vol-bad";
  std::filesystem::create_directories(host);
  auto mode = nv("run --rm -v " + host.string() + ":/data:z busybox true");
  EXPECT_EQ(mode.exit_code, 125) << mode.output;
  EXPECT_NE(mode.output.find("unknown mode 'z'"), std::string::npos) << mode.output;
  auto missing = nv("run --rm -v " + host.string() + "/nope:/data busybox true");
  EXPECT_EQ(missing.exit_code, 125) << missing.output;
  EXPECT_NE(missing.output.find("is not a directory"), std::string::npos) << missing.output;
}

TEST_F(CliE2eTest, DiskRateLimit_ThrottlesRootfsReadsAndShowsInInspect) {
  // busybox is a ~1.9 MB file on the rootfs disk; exec pages in only part of it.
  auto plain = nv("run --rm busybox md5sum /bin/busybox");
  ASSERT_EQ(plain.exit_code, 0) << plain.output;
  auto run = nv("run -d --name slow --disk-bps 256k --disk-iops 1000:2000 busybox sleep 600");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  // Reading the rest of the file through a 256 KiB/s limiter (burst 256 KiB) takes seconds,
  // however fast the host is: at least (1.9 MB - burst - what exec paged in) / 256 KiB/s.
  const auto start = std::chrono::steady_clock::now();
  auto slow = nv("exec slow md5sum /bin/busybox");
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(slow.exit_code, 0) << slow.output;
  EXPECT_EQ(slow.output, plain.output);  // throttled, not damaged
  EXPECT_GE(took, std::chrono::seconds(3));
  auto inspect = nv("inspect slow");
  EXPECT_NE(inspect.output.find("\"disk_bps\": \"262144\""), std::string::npos) << inspect.output;
  EXPECT_NE(inspect.output.find("\"disk_iops\": \"1000:2000\""), std::string::npos)
      << inspect.output;
  EXPECT_EQ(nv("rm -f slow").exit_code, 0);

  auto bad = nv("run --rm --disk-bps 1m:1k busybox true");
  EXPECT_EQ(bad.exit_code, 125) << bad.output;
  EXPECT_NE(bad.output.find("--disk-bps: invalid burst"), std::string::npos) << bad.output;
  EXPECT_EQ(std::count(bad.output.begin(), bad.output.end(), '\n'), 1) << bad.output;
}

TEST_F(CliE2eTest, TwoSandboxes_DoNotSeeEachOther) {
  auto a = nvBackground(
      "run --rm --name a1 busybox sh -c 'echo marker-a > /tmp/mark; sleep 600'");
  ASSERT_TRUE(a);
  (void)waitForStatus("a1", "running");
  auto b = nv("run --rm busybox sh -c 'cat /tmp/mark 2>/dev/null; ps -o comm | grep -c sleep'");
  EXPECT_EQ(b.output, "0\n") << b.output;
  EXPECT_EQ(nv("rm -f a1").exit_code, 0);
  (void)a->wait(milliseconds(60000));
}

TEST_F(CliE2eTest, Run_InterruptGoesToTheWorkload) {
  // SIGINT to an attached `run` (Ctrl-C without -t) is forwarded to the workload, whose own
  // handler decides: here it prints and exits 5, which becomes run's exit status.
  const std::string out = env().root + "/int.out";
  auto run = Subprocess::spawn(
      {.argv = {env().nanovisor, "--state-dir", env().root + "/state", "--image-root",
                env().root + "/images", "run", "--rm", "--name", "int1", "busybox", "sh", "-c",
                "trap 'echo got-int; exit 5' INT; echo ready; while true; do sleep 1; done"},
       .stdout_path = out,
       .stderr_path = "=stdout"});
  ASSERT_TRUE(run) << run.error().message();
  std::string text;
  for (int i = 0; i < 600 && text.find("ready") == std::string::npos; ++i) {
    std::this_thread::sleep_for(milliseconds(100));
    std::ifstream f(out);
    text.assign(std::istreambuf_iterator<char>(f), {});
  }
  ASSERT_NE(text.find("ready"), std::string::npos) << text;
  ASSERT_TRUE(run->signal(SIGINT));
  auto status = run->wait(milliseconds(60000));
  ASSERT_TRUE(status);
  EXPECT_EQ(waitStatusToExitCode(*status), 5);
  std::ifstream f(out);
  text.assign(std::istreambuf_iterator<char>(f), {});
  EXPECT_NE(text.find("got-int"), std::string::npos) << text;
}

TEST_F(CliE2eTest, RunTty_CtrlCGoesToTheWorkload) {
  // `run -it` on a terminal (script(1) gives it a pty): the ^C byte travels raw to the guest's
  // terminal, whose line discipline turns it into SIGINT for the workload.
  const std::string dir = env().root + "/tty";
  std::filesystem::create_directories(dir);
  const std::string driver = R"(cd "$2"
( i=0; while ! grep -q ready T 2>/dev/null && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done
  printf '\003'
  while [ ! -e done ]; do sleep 0.1; done ) |
( script -qfec "$1 run -it --rm busybox sh -c 'trap \"echo got-int; exit 5\" INT; echo ready; while true; do sleep 1; done'" T >/dev/null
  echo $? > done )
cat done)";
  auto r = runCommand({"sh", "-c", driver, "sh",
                       env().nanovisor + " --state-dir " + env().root + "/state --image-root " +
                           env().root + "/images",
                       dir},
                      milliseconds(180000));
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->output, "5\n");
  std::ifstream f(dir + "/T");
  const std::string session(std::istreambuf_iterator<char>(f), {});
  EXPECT_NE(session.find("got-int"), std::string::npos) << session;
}

TEST_F(CliE2eTest, BadInput_AgentDeadline_OneLineErrorNothingLeft) {
  // A guest whose agent cannot answer in time (here: a 300 ms deadline under TCG) ends in one
  // line naming the agent, a non-zero status, and no VM or sandbox directory (TearDown).
  std::ofstream(env().root + "/deadline.toml") << "agent_timeout_ms = 300\n";
  auto r = nv("--config " + env().root + "/deadline.toml run --rm busybox true");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("agent did not answer"), std::string::npos) << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
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

TEST_F(CliE2eTest, Libvirt_VolumeWritableAndReadOnly) {
  // libvirt's QEMU runs as libvirt-qemu: it writes where that user may (here, a 0777 dir).
  const auto host = std::filesystem::path(env().root) / "vol-libvirt";
  std::filesystem::create_directories(host);
  ::chmod(host.c_str(), 0777);
  std::ofstream(host / "in.txt") << "from the host\n";
  auto r = nv("--hypervisor libvirt run --rm -v " + host.string() + ":/rw -v " + host.string() +
              ":/ro:ro busybox sh -c 'cat /ro/in.txt; echo from libvirt > /rw/out.txt; "
              "touch /ro/refused || echo ro-refused'");
  if (r.output.find("not reachable") != std::string::npos) GTEST_SKIP() << r.output;
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("from the host\n"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("ro-refused"), std::string::npos) << r.output;
  EXPECT_EQ(firstLine(host / "out.txt"), "from libvirt");
  EXPECT_FALSE(std::filesystem::exists(host / "refused"));
}

TEST_F(CliE2eTest, Libvirt_RunEchoSmoke) {
  // With disk rate limits: libvirt must accept the <iotune> we give it.
  auto r = nv("--hypervisor libvirt run --rm --disk-bps 64m:128m --disk-iops 10000 busybox "
              "sh -c 'echo hello; uname -r'");
  if (r.output.find("not reachable") != std::string::npos) GTEST_SKIP() << r.output;
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.rfind("hello\n", 0), 0u) << r.output;
  EXPECT_NE(r.output.find("-nanovisor"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace nv
