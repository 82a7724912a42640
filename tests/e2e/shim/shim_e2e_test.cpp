// SPDX-License-Identifier: Apache-2.0
// `ctr run --runtime io.containerd.nanovisor.v2` against a private containerd (own root, state,
// socket and config in a temp dir; the CRI plugin disabled). The workload runs in a micro-VM:
// `uname -r` prints the guest kernel's release, exit codes and both output streams come back;
// `ctr task exec/ps/metrics/pause/resume/kill/rm` work on a detached task; `ctr run -t` gives
// the workload a terminal of the size ctr's own terminal has; exit codes match runc's.
// Afterwards no shim, VMM, socket, mount or sandbox directory of ours is left.
#include <fcntl.h>
#include <openssl/sha.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <future>

#include <cctype>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "common/subprocess.h"
#include "tests/support/private_containerd.h"

namespace nv {
namespace {

using std::chrono::milliseconds;
namespace fs = std::filesystem;

constexpr const char* kRuntime = "io.containerd.nanovisor.v2";
constexpr const char* kShim = "containerd-shim-nanovisor-v2";

using test::processesMatching;
using test::readFile;

std::string sha256Hex(const std::string& data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  ::SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  std::string hex;
  char buf[3];
  for (unsigned char b : digest) {
    std::snprintf(buf, sizeof(buf), "%02x", b);
    hex += buf;
  }
  return hex;
}

// One containerd for the whole suite.
class Containerd : public ::testing::Environment {
 public:
  void SetUp() override {
    const char* build = std::getenv("NV_BUILD_DIR");
    if (build == nullptr) return skip("run through ctest (NV_BUILD_DIR unset)");
    if (auto missing = test::shimSuiteMissing(build); !missing.empty()) return skip(missing);
    bin_ = std::string(build) + "/bin";
    auto started = test::PrivateContainerd::start({.bin_dir = bin_});
    if (!started) return fatal(started.error().message());
    containerd_ = std::move(*started);
    auto image = containerd_->importBusybox(build);
    if (!image) return fatal(image.error().message());
    image_ = *image;
  }

  void TearDown() override {
    if (!containerd_) return;
    EXPECT_TRUE(containerd_->stop()) << "containerd did not stop on SIGTERM";
    // Nothing of ours may be left: shims, VMMs, mounts, sockets.
    EXPECT_TRUE(leftoverShims().empty()) << kShim << " processes left";
    EXPECT_TRUE(processesMatching(root() + "/nv-state").empty()) << "VMM processes left";
    EXPECT_EQ(readFile("/proc/self/mountinfo").find(root()), std::string::npos) << "mounts left";
    for (const auto& id : ids_) {
      const std::string sock = "/run/containerd/s/" + sha256Hex(socket() + "/default/" + id);
      EXPECT_FALSE(fs::exists(sock)) << "shim socket left: " << sock;
    }
    containerd_.reset();  // removes its temp dir
  }

  // Shim processes serving our containerd (their -address is our socket).
  std::vector<pid_t> leftoverShims() const { return containerd_->shims(); }

  RunResult ctr(std::vector<std::string> args, int timeout_ms) const {
    return containerd_->ctr(args, timeout_ms);
  }

  // ctr run --rm with our runtime; remembers the id for the socket check.
  RunResult run(const std::string& id, std::vector<std::string> command) {
    ids_.push_back(id);
    std::vector<std::string> args = {"run", "--rm", "--runtime", kRuntime, image_, id};
    args.insert(args.end(), command.begin(), command.end());
    return ctr(args, 120000);
  }

  void remember(const std::string& id) { ids_.push_back(id); }
  const std::string& image() const { return image_; }
  std::string log() const { return containerd_->log(); }
  const std::string& skipReason() const { return skip_; }
  const std::string& root() const { return containerd_->root(); }
  const std::string& socket() const { return containerd_->socket(); }

 private:
  void skip(std::string why) { skip_ = std::move(why); }
  void fatal(std::string why) { skip_ = "FAIL: " + why; }

  std::string bin_;
  std::string image_;
  std::string skip_;
  std::vector<std::string> ids_;
  std::unique_ptr<test::PrivateContainerd> containerd_;
};

Containerd* g_containerd = static_cast<Containerd*>(
    ::testing::AddGlobalTestEnvironment(new Containerd));

class ShimE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string& why = g_containerd->skipReason();
    if (why.rfind("FAIL: ", 0) == 0) GTEST_FAIL() << why.substr(6);
    if (!why.empty()) GTEST_SKIP() << why;
  }
  void TearDown() override {
    if (!g_containerd->skipReason().empty()) return;
    // ctr run --rm returned: the shim exited after Delete+Shutdown, its sandbox is gone.
    for (int i = 0; i < 50 && !g_containerd->leftoverShims().empty(); ++i) {
      std::this_thread::sleep_for(milliseconds(100));
    }
    EXPECT_TRUE(g_containerd->leftoverShims().empty()) << "a shim outlived its task";
    const fs::path sandboxes = fs::path(g_containerd->root()) / "nv-state-shim" / "default";
    std::error_code ec;
    EXPECT_TRUE(!fs::exists(sandboxes) || fs::is_empty(sandboxes, ec)) << "sandbox dir left";
    EXPECT_TRUE(g_containerd->ctr({"containers", "ls", "-q"}, 10000).output.empty());
  }
};

// Runs ctr on the slave side of a new pty (its controlling terminal, `rows` x `cols`) and
// returns what it printed and its exit code; killed after `timeout`.
RunResult ctrOnPty(const std::vector<std::string>& args, unsigned short rows, unsigned short cols,
                   milliseconds timeout) {
  int master = -1;
  int slave = -1;
  winsize size{};
  size.ws_row = rows;
  size.ws_col = cols;
  if (::openpty(&master, &slave, nullptr, nullptr, &size) != 0) {
    return {.exit_code = -1, .output = std::string("openpty: ") + std::strerror(errno)};
  }
  std::vector<std::string> argv = {"/usr/bin/ctr", "--address", g_containerd->socket()};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> c_argv;
  for (auto& a : argv) c_argv.push_back(a.data());
  c_argv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::setsid();
    ::ioctl(slave, TIOCSCTTY, 0);
    for (int fd = 0; fd < 3; ++fd) ::dup2(slave, fd);
    ::close(master);
    if (slave > 2) ::close(slave);
    ::execv(c_argv[0], c_argv.data());
    ::_exit(127);
  }
  ::close(slave);
  RunResult result;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline -
                                                               std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      ::kill(pid, SIGKILL);
      result.output += "\n[timed out]";
      break;
    }
    pollfd pfd{master, POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[4096];
    ssize_t n = ::read(master, buf, sizeof(buf));
    if (n <= 0) break;  // EIO: every slave handle closed (ctr exited)
    result.output.append(buf, static_cast<size_t>(n));
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::close(master);
  result.exit_code = waitStatusToExitCode(status);
  return result;
}

// Polls `ctr task ls` until the task shows `status`.
bool waitForStatus(const std::string& id, const std::string& status) {
  for (int i = 0; i < 600; ++i) {
    auto listed = g_containerd->ctr({"task", "ls"}, 10000);
    std::istringstream lines(listed.output);
    std::string line;
    while (std::getline(lines, line)) {
      if (line.rfind(id + " ", 0) == 0 && line.find(status) != std::string::npos) return true;
    }
    std::this_thread::sleep_for(milliseconds(100));
  }
  return false;
}

// Polls `ctr task ps` until it lists at least `count` processes.
bool waitForProcesses(const std::string& id, size_t count) {
  for (int i = 0; i < 600; ++i) {
    auto ps = g_containerd->ctr({"task", "ps", id}, 30000);
    size_t lines = 0;
    std::istringstream in(ps.output);
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty() && std::isdigit(static_cast<unsigned char>(line[0]))) ++lines;
    }
    if (lines >= count) return true;
    std::this_thread::sleep_for(milliseconds(100));
  }
  return false;
}

// The exit codes ctr reports for one runtime: `sh -c 'exit 7'`, `true`, an exec killed by
// SIGTERM, the task's init killed by SIGKILL.
std::vector<int> exitCodes(const std::string& runtime, const std::string& id) {
  std::vector<int> codes;
  const std::string& image = g_containerd->image();
  g_containerd->remember(id + "-a");
  codes.push_back(g_containerd->ctr({"run", "--rm", "--runtime", runtime, image, id + "-a",
                                     "sh", "-c", "exit 7"}, 120000).exit_code);
  g_containerd->remember(id + "-b");
  codes.push_back(g_containerd->ctr({"run", "--rm", "--runtime", runtime, image, id + "-b",
                                     "true"}, 120000).exit_code);
  const std::string c = id + "-c";
  g_containerd->remember(c);
  auto init = std::async(std::launch::async, [&] {
    return g_containerd->ctr({"run", "--rm", "--runtime", runtime, image, c, "sleep", "1000"},
                             180000);
  });
  if (!waitForStatus(c, "RUNNING")) {
    ADD_FAILURE() << runtime << ": " << c << " never ran";
    (void)g_containerd->ctr({"task", "kill", "-s", "SIGKILL", c}, 30000);
    init.wait();
    return codes;
  }
  auto exec = std::async(std::launch::async, [&] {
    return g_containerd->ctr({"task", "exec", "--exec-id", "sleeper", c, "sleep", "1000"},
                             180000);
  });
  EXPECT_TRUE(waitForProcesses(c, 2)) << runtime << ": the exec never showed in ctr task ps";
  auto term = g_containerd->ctr({"task", "kill", "--exec-id", "sleeper", "-s", "SIGTERM", c},
                                30000);
  EXPECT_EQ(term.exit_code, 0) << runtime << ": " << term.output;
  codes.push_back(exec.get().exit_code);
  auto kill = g_containerd->ctr({"task", "kill", "-s", "SIGKILL", c}, 30000);
  EXPECT_EQ(kill.exit_code, 0) << runtime << ": " << kill.output;
  codes.push_back(init.get().exit_code);
  return codes;
}

TEST_F(ShimE2eTest, UnameInTheVm_PrintsTheGuestKernelRelease) {
  auto r = g_containerd->run("t1", {"uname", "-r"});
  EXPECT_EQ(r.exit_code, 0) << r.output << g_containerd->log();
  EXPECT_NE(r.output.find("-nanovisor"), std::string::npos) << r.output;
}

TEST_F(ShimE2eTest, ExitCodeAndBothStreams_Propagate) {
  auto r = g_containerd->run("t2", {"sh", "-c", "echo to-out; echo to-err >&2; exit 7"});
  EXPECT_EQ(r.exit_code, 7) << r.output << g_containerd->log();
  EXPECT_NE(r.output.find("to-out"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("to-err"), std::string::npos) << r.output;
}

TEST_F(ShimE2eTest, DetachedTask_KilledThroughTheShim_StopsAndIsRemoved) {
  g_containerd->remember("t3");
  auto started = g_containerd->ctr({"run", "-d", "--runtime", kRuntime,
                                    g_containerd->image(), "t3", "sleep", "1000"}, 120000);
  ASSERT_EQ(started.exit_code, 0) << started.output << g_containerd->log();
  auto listed = g_containerd->ctr({"task", "ls"}, 10000);
  EXPECT_NE(listed.output.find("RUNNING"), std::string::npos) << listed.output;

  auto killed = g_containerd->ctr({"task", "kill", "-s", "SIGKILL", "t3"}, 30000);
  EXPECT_EQ(killed.exit_code, 0) << killed.output;
  bool stopped = false;
  for (int i = 0; i < 300 && !stopped; ++i) {
    stopped = g_containerd->ctr({"task", "ls"}, 10000).output.find("STOPPED") != std::string::npos;
    if (!stopped) std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_TRUE(stopped) << g_containerd->log();
  auto removed = g_containerd->ctr({"task", "rm", "t3"}, 30000);
  EXPECT_EQ(removed.exit_code, 0) << removed.output;
  auto container = g_containerd->ctr({"containers", "rm", "t3"}, 30000);
  EXPECT_EQ(container.exit_code, 0) << container.output;
}

TEST_F(ShimE2eTest, DetachedTask_ExecPsMetricsPauseResumeKillRm) {
  const std::string id = "t4";
  g_containerd->remember(id);
  auto started = g_containerd->ctr({"run", "-d", "--runtime", kRuntime,
                                    g_containerd->image(), id, "sleep", "1000"}, 120000);
  ASSERT_EQ(started.exit_code, 0) << started.output << g_containerd->log();

  // Exec: output through containerd's FIFOs, the exec's own exit code.
  auto exec = g_containerd->ctr({"task", "exec", "--exec-id", "e1", id, "sh", "-c",
                                 "echo exec-out; echo exec-err >&2; uname -r; exit 3"}, 60000);
  EXPECT_EQ(exec.exit_code, 3) << exec.output << g_containerd->log();
  EXPECT_NE(exec.output.find("exec-out"), std::string::npos) << exec.output;
  EXPECT_NE(exec.output.find("exec-err"), std::string::npos) << exec.output;
  EXPECT_NE(exec.output.find("-nanovisor"), std::string::npos) << exec.output;

  // ps: the guest's processes of the container (the init's sleep at least).
  auto ps = g_containerd->ctr({"task", "ps", id}, 30000);
  EXPECT_EQ(ps.exit_code, 0) << ps.output;
  EXPECT_NE(ps.output.find("PID"), std::string::npos) << ps.output;
  EXPECT_TRUE(waitForProcesses(id, 1)) << ps.output;

  // metrics: cgroup v2 numbers from the guest, memory in use is not zero.
  auto metrics = g_containerd->ctr({"task", "metrics", id}, 30000);
  EXPECT_EQ(metrics.exit_code, 0) << metrics.output << g_containerd->log();
  std::istringstream lines(metrics.output);
  std::string line;
  uint64_t usage = 0;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::string key;
    words >> key;
    if (key == "memory.usage") words >> usage;
  }
  EXPECT_GT(usage, 0u) << metrics.output;
  EXPECT_NE(metrics.output.find("memory.usage_limit"), std::string::npos) << metrics.output;

  // pause/resume: the whole VM stops and continues; the task works afterwards.
  auto paused = g_containerd->ctr({"task", "pause", id}, 30000);
  EXPECT_EQ(paused.exit_code, 0) << paused.output << g_containerd->log();
  EXPECT_TRUE(waitForStatus(id, "PAUSED")) << g_containerd->ctr({"task", "ls"}, 10000).output;
  auto resumed = g_containerd->ctr({"task", "resume", id}, 30000);
  EXPECT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_TRUE(waitForStatus(id, "RUNNING"));
  auto after = g_containerd->ctr({"task", "exec", "--exec-id", "e2", id, "echo", "still-here"},
                                 60000);
  EXPECT_EQ(after.exit_code, 0) << after.output;
  EXPECT_NE(after.output.find("still-here"), std::string::npos) << after.output;

  auto killed = g_containerd->ctr({"task", "kill", "-s", "SIGKILL", id}, 30000);
  EXPECT_EQ(killed.exit_code, 0) << killed.output;
  EXPECT_TRUE(waitForStatus(id, "STOPPED")) << g_containerd->log();
  auto removed = g_containerd->ctr({"task", "rm", id}, 30000);
  EXPECT_EQ(removed.exit_code, 0) << removed.output;
  auto container = g_containerd->ctr({"containers", "rm", id}, 30000);
  EXPECT_EQ(container.exit_code, 0) << container.output;
}

TEST_F(ShimE2eTest, RunWithTerminal_GivesATtyOfCtrsSize) {
  g_containerd->remember("t5");
  // The size arrives through ResizePty right after Start: wait for it, then print it.
  auto r = ctrOnPty({"run", "-t", "--rm", "--runtime", kRuntime, g_containerd->image(), "t5",
                     "sh", "-c",
                     "tty; test -t 0 && echo stdin-is-a-tty; "
                     "while [ \"$(stty size)\" != \"40 100\" ]; do sleep 0.1; done; "
                     "echo size $(stty size); exit 5"},
                    40, 100, milliseconds(180000));
  EXPECT_EQ(r.exit_code, 5) << r.output << g_containerd->log();
  EXPECT_NE(r.output.find("/dev/pts/"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("stdin-is-a-tty"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("size 40 100"), std::string::npos) << r.output;
}

TEST_F(ShimE2eTest, ExecWithTerminal_GivesATtyOfCtrsSize) {
  const std::string id = "t6";
  g_containerd->remember(id);
  auto started = g_containerd->ctr({"run", "-d", "--runtime", kRuntime,
                                    g_containerd->image(), id, "sleep", "1000"}, 120000);
  ASSERT_EQ(started.exit_code, 0) << started.output << g_containerd->log();
  auto r = ctrOnPty({"task", "exec", "-t", "--exec-id", "tty1", id, "sh", "-c",
                     "tty; while [ \"$(stty size)\" != \"30 90\" ]; do sleep 0.1; done; "
                     "echo size $(stty size); exit 4"},
                    30, 90, milliseconds(120000));
  EXPECT_EQ(r.exit_code, 4) << r.output << g_containerd->log();
  EXPECT_NE(r.output.find("/dev/pts/"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("size 30 90"), std::string::npos) << r.output;
  auto killed = g_containerd->ctr({"task", "kill", "-s", "SIGKILL", id}, 30000);
  EXPECT_EQ(killed.exit_code, 0) << killed.output;
  EXPECT_TRUE(waitForStatus(id, "STOPPED"));
  EXPECT_EQ(g_containerd->ctr({"task", "rm", id}, 30000).exit_code, 0);
  EXPECT_EQ(g_containerd->ctr({"containers", "rm", id}, 30000).exit_code, 0);
}

TEST_F(ShimE2eTest, OomKill_PublishesTaskOomAnd137) {
  // `ctr events` records what containerd receives while the workload outgrows its 32 MiB limit.
  const std::string events_log = g_containerd->root() + "/events-t7.log";
  auto events = Subprocess::spawn({.argv = {"/usr/bin/ctr", "--address", g_containerd->socket(),
                                            "events"},
                                   .stdout_path = events_log,
                                   .stderr_path = "=stdout",
                                   .die_with_parent = true});
  ASSERT_TRUE(events.has_value()) << events.error().message();
  g_containerd->remember("t7");
  auto r = g_containerd->ctr({"run", "--rm", "--runtime", kRuntime, "--memory-limit", "33554432",
                              g_containerd->image(), "t7", "sh", "-c",
                              "a=xxxxxxxxxxxxxxxx; while true; do a=$a$a; done"},
                             180000);
  EXPECT_EQ(r.exit_code, 137) << r.output << g_containerd->log();
  bool seen = false;
  for (int i = 0; i < 100 && !seen; ++i) {
    seen = readFile(events_log).find("/tasks/oom") != std::string::npos;
    if (!seen) std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_TRUE(seen) << readFile(events_log);
  (void)events->signal(SIGTERM);
  (void)events->wait(milliseconds(5000));
}

TEST_F(ShimE2eTest, ExitCodes_MatchRunc) {
  const auto runc = exitCodes("io.containerd.runc.v2", "rc");
  if (runc.size() < 2 || runc[1] != 0) {
    GTEST_SKIP() << "runc cannot run the busybox image under this containerd (true exited "
                 << (runc.size() > 1 ? runc[1] : -1) << "): nothing to compare against";
  }
  const auto nanovisor = exitCodes(kRuntime, "nv");
  EXPECT_EQ(runc, (std::vector<int>{7, 0, 143, 137}));
  EXPECT_EQ(nanovisor, runc) << g_containerd->log();
}


// The PID `ctr task ls` shows for `id`, or -1.
long taskPid(const std::string& id) {
  std::istringstream lines(g_containerd->ctr({"task", "ls"}, 10000).output);
  std::string task, pid;
  while (lines >> task >> pid) {
    std::string rest;
    std::getline(lines, rest);
    if (task == id) return std::atol(pid.c_str());
  }
  return -1;
}

// Kills a detached task and removes it and its container.
void killAndRemove(const std::string& id) {
  (void)g_containerd->ctr({"task", "kill", "-s", "SIGKILL", id}, 30000);
  EXPECT_TRUE(waitForStatus(id, "STOPPED")) << id << "\n" << g_containerd->log();
  EXPECT_EQ(g_containerd->ctr({"task", "rm", id}, 30000).exit_code, 0) << id;
  EXPECT_EQ(g_containerd->ctr({"containers", "rm", id}, 30000).exit_code, 0) << id;
}

// A pod as CRI runs it, driven by ctr with CRI's annotations: the sandbox container makes the
// VM; the pod's containers join it through the same shim, each with its own rootfs disk, and
// share the sandbox's pid namespace when their spec says so. The VM and shim outlive a
// removed container and go with the sandbox.
TEST_F(ShimE2eTest, Pod_ContainersJoinTheSandboxsVmAndShim) {
  const std::vector<std::string> pod = {"--annotation", "io.kubernetes.cri.sandbox-id=pod1"};
  auto run = [&](const std::string& type, std::vector<std::string> extra, const std::string& id,
                 std::vector<std::string> command) {
    g_containerd->remember(id);
    std::vector<std::string> args = {"run", "-d", "--runtime", kRuntime, "--annotation",
                                     "io.kubernetes.cri.container-type=" + type};
    args.insert(args.end(), pod.begin(), pod.end());
    args.insert(args.end(), extra.begin(), extra.end());
    args.insert(args.end(), {g_containerd->image(), id});
    args.insert(args.end(), command.begin(), command.end());
    return g_containerd->ctr(args, 120000);
  };
  auto sandbox = run("sandbox", {}, "pod1", {"sleep", "1001"});
  ASSERT_EQ(sandbox.exit_code, 0) << sandbox.output << g_containerd->log();
  const long vmm_pid = taskPid("pod1");
  ASSERT_GT(vmm_pid, 0);
  const std::string pid_ns = "pid:/proc/" + std::to_string(vmm_pid) + "/ns/pid";
  auto c1 = run("container", {"--with-ns", pid_ns}, "pod1-c1", {"sleep", "1002"});
  ASSERT_EQ(c1.exit_code, 0) << c1.output << g_containerd->log();

  EXPECT_EQ(taskPid("pod1-c1"), vmm_pid) << "the container runs in another VM";
  EXPECT_EQ(g_containerd->leftoverShims().size(), 1u) << "the pod has more than one shim";
  auto ps = g_containerd->ctr({"task", "exec", "--exec-id", "ps", "pod1-c1", "ps"}, 60000);
  EXPECT_EQ(ps.exit_code, 0) << ps.output;
  EXPECT_NE(ps.output.find("sleep 1001"), std::string::npos) << "no shared pid ns: " << ps.output;
  EXPECT_NE(ps.output.find("sleep 1002"), std::string::npos) << ps.output;

  // A second container takes another disk slot; removing the first frees its slot.
  auto c2 = run("container", {}, "pod1-c2", {"sh", "-c", "echo from-c2 > /tmp/x; sleep 1003"});
  ASSERT_EQ(c2.exit_code, 0) << c2.output << g_containerd->log();
  killAndRemove("pod1-c1");
  auto alive = g_containerd->ctr({"task", "exec", "--exec-id", "cat", "pod1-c2", "cat", "/tmp/x"},
                                 60000);
  EXPECT_EQ(alive.output, "from-c2\n") << alive.output;
  auto c3 = run("container", {}, "pod1-c3", {"sleep", "1004"});
  EXPECT_EQ(c3.exit_code, 0) << c3.output << g_containerd->log();
  EXPECT_EQ(taskPid("pod1-c3"), vmm_pid);
  killAndRemove("pod1-c3");
  killAndRemove("pod1-c2");
  EXPECT_EQ(taskPid("pod1"), vmm_pid) << "the VM went before its sandbox container";
  killAndRemove("pod1");  // TearDown checks that the shim and the sandbox dir are gone
}

// A pod container whose sandbox this shim does not serve fails with a one-line reason, and
// leaves nothing (its own shim exits).
TEST_F(ShimE2eTest, PodContainer_WithoutItsSandbox_FailsClearly) {
  g_containerd->remember("orphan");
  auto r = g_containerd->ctr({"run", "--rm", "--runtime", kRuntime, "--annotation",
                              "io.kubernetes.cri.container-type=container", "--annotation",
                              "io.kubernetes.cri.sandbox-id=nopod", g_containerd->image(),
                              "orphan", "true"},
                             120000);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("pod sandbox nopod is not served by this shim"), std::string::npos)
      << r.output;
  (void)g_containerd->ctr({"containers", "rm", "orphan"}, 30000);
}

}  // namespace
}  // namespace nv
