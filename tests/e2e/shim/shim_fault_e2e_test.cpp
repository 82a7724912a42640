// SPDX-License-Identifier: Apache-2.0
// containerd-shim-nanovisor-v2 under faults, through a real containerd 1.6 and ctr (a private
// containerd: own root, state, socket and config in a temp dir; CRI disabled):
// - the VMM (QEMU) of a running task is SIGKILLed: the task exits (Wait answers, status 255,
//   the shim's log says "qemu killed by signal 9"), `ctr task ls` shows it STOPPED, and
//   `ctr task rm` + `ctr container rm` remove everything;
// - the shim daemon of a running task is SIGKILLed: containerd notices the disconnect and runs
//   `containerd-shim-nanovisor-v2 delete`, which leaves no QEMU, mount, socket, sandbox state
//   dir, host cgroup or rootfs disk of that task; the task is gone from `ctr task ls`,
//   `ctr c rm` works; another task (and `delete` run for it while its shim lives) is
//   untouched, and `delete` run again succeeds;
// - containerd restarts (SIGTERM, start again with the same root/state/config) while a task
//   runs: it reconnects to the running shim, `ctr task ls` shows RUNNING, `ctr task exec`
//   works, then kill, rm and container rm leave nothing behind; a task whose VM died while
//   containerd was down is STOPPED after the restart and removable.
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "common/subprocess.h"
#include "runtime/state.h"
#include "shim/daemon.h"
#include "shim/options.h"
#include "tests/support/private_containerd.h"

namespace nv {
namespace {

using std::chrono::milliseconds;
namespace fs = std::filesystem;

constexpr const char* kRuntime = "io.containerd.nanovisor.v2";
constexpr const char* kShim = "containerd-shim-nanovisor-v2";

using test::processesMatching;
using test::readFile;

// True while `pid` exists and is not a zombie.
bool processRuns(pid_t pid) {
  if (pid <= 0) return false;
  const std::string stat = readFile("/proc/" + std::to_string(pid) + "/stat");
  const auto paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] != 'Z' &&
         stat[paren + 2] != 'X';
}

// The host cgroup directories of process `pid` named nanovisor-* (the sandbox cgroup of a
// QEMU), from /proc/<pid>/cgroup and the cgroup mounts.
std::vector<fs::path> sandboxCgroupDirs(pid_t pid) {
  std::map<std::string, fs::path> mounts;  // controller (or "" for v2) -> mount point
  std::istringstream mount_lines(readFile("/proc/self/mounts"));
  for (std::string line; std::getline(mount_lines, line);) {
    std::istringstream fields(line);
    std::string source, target, type, options;
    fields >> source >> target >> type >> options;
    if (type == "cgroup2") mounts.emplace("", target);
    if (type != "cgroup") continue;
    std::istringstream opts(options);
    for (std::string opt; std::getline(opts, opt, ',');) mounts.emplace(opt, target);
  }
  std::vector<fs::path> dirs;
  std::istringstream lines(readFile("/proc/" + std::to_string(pid) + "/cgroup"));
  for (std::string line; std::getline(lines, line);) {
    const auto first = line.find(':');
    const auto second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) continue;
    const fs::path path = line.substr(second + 1);
    if (path.filename().string().rfind("nanovisor-", 0) != 0) continue;
    std::istringstream names(line.substr(first + 1, second - first - 1));
    std::string name;
    std::getline(names, name, ',');
    if (auto it = mounts.find(name); it != mounts.end()) {
      dirs.push_back(it->second / path.relative_path());
    }
  }
  return dirs;
}

// One containerd for the suite (the restart test restarts it).
class Containerd : public ::testing::Environment {
 public:
  void SetUp() override {
    const char* build = std::getenv("NV_BUILD_DIR");
    if (build == nullptr) return skip("run through ctest (NV_BUILD_DIR unset)");
    if (auto missing = test::shimSuiteMissing(build); !missing.empty()) return skip(missing);
    auto started = test::PrivateContainerd::start({.bin_dir = std::string(build) + "/bin"});
    if (!started) return fatal(started.error().message());
    containerd_ = std::move(*started);
    auto image = containerd_->importBusybox(build);
    if (!image) return fatal(image.error().message());
    image_ = *image;
  }

  void TearDown() override {
    if (!containerd_) return;
    EXPECT_TRUE(containerd_->stop()) << "containerd did not stop on SIGTERM";
    EXPECT_TRUE(containerd_->shims().empty()) << kShim << " processes left";
    EXPECT_TRUE(processesMatching(root() + "/nv-state").empty()) << "VMM processes left";
    EXPECT_EQ(readFile("/proc/self/mountinfo").find(root()), std::string::npos) << "mounts left";
    containerd_.reset();  // removes its temp dir
  }

  RunResult ctr(const std::vector<std::string>& args, int timeout_ms = 60000) const {
    return containerd_->ctr(args, timeout_ms);
  }
  test::PrivateContainerd& containerd() { return *containerd_; }
  const std::string& image() const { return image_; }
  const std::string& root() const { return containerd_->root(); }
  std::string log() const { return containerd_->log(); }
  const std::string& skipReason() const { return skip_; }

 private:
  void skip(std::string why) { skip_ = std::move(why); }
  void fatal(std::string why) { skip_ = "FAIL: " + why; }

  std::string image_;
  std::string skip_;
  std::unique_ptr<test::PrivateContainerd> containerd_;
};

Containerd* g_containerd = static_cast<Containerd*>(
    ::testing::AddGlobalTestEnvironment(new Containerd));

// What one running task has on the host, read while it runs.
struct TaskFootprint {
  pid_t shim_pid = 0;
  pid_t vmm_pid = 0;
  fs::path sandbox_dir;              // <nanovisor shim state>/<ns>/<sandbox id>
  fs::path shim_socket;              // /run/containerd/s/<hash>
  std::vector<fs::path> cgroup_dirs;  // the QEMU's host cgroup
};

class ShimFaultE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string& why = g_containerd->skipReason();
    if (why.rfind("FAIL: ", 0) == 0) GTEST_FAIL() << why.substr(6);
    if (!why.empty()) GTEST_SKIP() << why;
  }

  // `ctr run -d` of a long-running task (`flags` before the image); its footprint once it runs.
  TaskFootprint runDetached(const std::string& id, std::vector<std::string> flags = {}) {
    std::vector<std::string> args = {"run", "-d", "--runtime", kRuntime};
    args.insert(args.end(), flags.begin(), flags.end());
    args.insert(args.end(), {g_containerd->image(), id, "sleep", "1000"});
    auto started = g_containerd->ctr(args, 120000);
    EXPECT_EQ(started.exit_code, 0) << started.output << g_containerd->log();
    TaskFootprint f;
    const fs::path bundle = fs::path(g_containerd->root()) / "state" /
                            "io.containerd.runtime.v2.task" / "default" / id;
    f.shim_pid = std::atoi(readFile(bundle / "shim.pid").c_str());
    f.sandbox_dir = shim::sandboxStateDir(fs::path(g_containerd->root()) / "nv-state", "default") /
                    shim::sandboxIdFor(id);
    f.shim_socket = shim::socketPath(g_containerd->containerd().socket(), "default", id);
    runtime::StateStore store(f.sandbox_dir.parent_path());
    if (auto state = store.load(shim::sandboxIdFor(id)); state) f.vmm_pid = state->vmm_pid;
    f.cgroup_dirs = sandboxCgroupDirs(f.vmm_pid);
    EXPECT_TRUE(processRuns(f.shim_pid)) << "no shim daemon for " << id;
    EXPECT_TRUE(processRuns(f.vmm_pid)) << "no VMM for " << id;
    EXPECT_TRUE(fs::exists(f.shim_socket)) << f.shim_socket;
    return f;
  }

  // A pod as CRI groups it (annotations): sandbox `pod` and one member `<pod>-c1`, both
  // `sleep`; returns the sandbox's footprint (the pod's shim and VM).
  TaskFootprint runPod(const std::string& pod) {
    const std::string group = "io.kubernetes.cri.sandbox-id=" + pod;
    TaskFootprint f = runDetached(
        pod, {"--annotation", "io.kubernetes.cri.container-type=sandbox", "--annotation", group});
    auto started = g_containerd->ctr({"run", "-d", "--runtime", kRuntime, "--annotation",
                                      "io.kubernetes.cri.container-type=container",
                                      "--annotation", group, g_containerd->image(), pod + "-c1",
                                      "sleep", "1000"},
                                     120000);
    EXPECT_EQ(started.exit_code, 0) << started.output << g_containerd->log();
    return f;
  }

  // Polls `ctr task ls` until `id` shows `status` ("" : until it is not listed).
  static bool waitForTask(const std::string& id, const std::string& status) {
    for (int i = 0; i < 600; ++i) {
      std::istringstream lines(g_containerd->ctr({"task", "ls"}, 10000).output);
      bool listed = false;
      bool matches = false;
      for (std::string line; std::getline(lines, line);) {
        if (line.rfind(id + " ", 0) != 0) continue;
        listed = true;
        matches = !status.empty() && line.find(status) != std::string::npos;
      }
      if (status.empty() ? !listed : matches) return true;
      std::this_thread::sleep_for(milliseconds(100));
    }
    return false;
  }

  // `containerd-shim-nanovisor-v2 delete` as containerd runs it (same environment).
  static RunResult runShimDelete(const std::string& id, const fs::path& bundle) {
    const std::string root = g_containerd->root();
    auto r = runCommand({"/usr/bin/env", "NANOVISOR_STATE_DIR=" + root + "/nv-state",
                         "NANOVISOR_IMAGE_ROOT=" + root + "/nv-images",
                         std::string(std::getenv("NV_BUILD_DIR")) + "/bin/" + kShim,
                         "-namespace", "default", "-address", g_containerd->containerd().socket(),
                         "-id", id, "-bundle", bundle.string(), "delete"},
                        milliseconds(30000));
    if (!r) return {.exit_code = -1, .output = r.error().message()};
    return *r;
  }

  // The EROFS disks the shims built from containerd's snapshots (the image store's cache).
  static std::set<fs::path> snapshotDisks() {
    std::set<fs::path> disks;
    std::error_code ec;
    const fs::path dir = fs::path(g_containerd->root()) / "nv-images" / "rootfs" / "snapshots";
    for (const auto& entry : fs::directory_iterator(dir, ec)) disks.insert(entry.path());
    return disks;
  }

  // The first line of `log` that contains both needles ("" if none).
  static std::string logLine(const std::string& log, const std::string& a, const std::string& b) {
    std::istringstream lines(log);
    for (std::string line; std::getline(lines, line);) {
      if (line.find(a) != std::string::npos && line.find(b) != std::string::npos) return line;
    }
    return "";
  }

  static bool waitForExit(pid_t pid) {
    for (int i = 0; i < 300 && processRuns(pid); ++i) {
      std::this_thread::sleep_for(milliseconds(100));
    }
    return !processRuns(pid);
  }

  // Nothing of the task is left on the host.
  static void expectNothingLeft(const TaskFootprint& f) {
    EXPECT_TRUE(waitForExit(f.shim_pid)) << "the shim daemon still runs";
    EXPECT_TRUE(waitForExit(f.vmm_pid)) << "the VMM still runs";
    EXPECT_FALSE(fs::exists(f.shim_socket)) << "shim socket left: " << f.shim_socket;
    EXPECT_FALSE(fs::exists(f.sandbox_dir)) << "sandbox state dir left: " << f.sandbox_dir;
    for (const auto& dir : f.cgroup_dirs) EXPECT_FALSE(fs::exists(dir)) << "cgroup left: " << dir;
    EXPECT_EQ(readFile("/proc/self/mountinfo").find(f.sandbox_dir.string()), std::string::npos)
        << "a mount below " << f.sandbox_dir << " is left";
  }
};

// `ctr events` recording into a file while it lives.
class EventLog {
 public:
  explicit EventLog(const std::string& path) : path_(path) {
    auto spawned = Subprocess::spawn({.argv = {"/usr/bin/ctr", "--address",
                                               g_containerd->containerd().socket(), "events"},
                                      .stdout_path = path,
                                      .stderr_path = "=stdout",
                                      .die_with_parent = true});
    if (spawned) process_.emplace(std::move(*spawned));
  }
  ~EventLog() {
    if (!process_) return;
    (void)process_->signal(SIGTERM);
    (void)process_->wait(milliseconds(5000));
  }
  EventLog(const EventLog&) = delete;
  EventLog& operator=(const EventLog&) = delete;

  // The first line with `topic` and `needle`, waiting up to 10 s for it.
  std::string waitFor(const std::string& topic, const std::string& needle) const {
    for (int i = 0; i < 100; ++i) {
      std::istringstream lines(readFile(path_));
      for (std::string line; std::getline(lines, line);) {
        if (line.find(topic) != std::string::npos && line.find(needle) != std::string::npos) {
          return line;
        }
      }
      std::this_thread::sleep_for(milliseconds(100));
    }
    return "";
  }
  [[nodiscard]] std::string all() const { return readFile(path_); }

 private:
  std::string path_;
  std::optional<Subprocess> process_;
};

TEST_F(ShimFaultE2eTest, VmmKilled_TaskExitsWithTheReasonAndIsRemoved) {
  const std::string id = "fault-vmm";
  EventLog events(g_containerd->root() + "/events-" + id + ".log");
  const TaskFootprint f = runDetached(id);
  ASSERT_TRUE(processRuns(f.vmm_pid)) << g_containerd->log();

  ASSERT_EQ(::kill(f.vmm_pid, SIGKILL), 0);

  // Wait answered: the exit went out as an event, with the status the shim gives a VM that
  // died under the workload (255, as for any failure of the sandbox itself).
  const std::string exit = events.waitFor("/tasks/exit", "\"container_id\":\"" + id + "\"");
  EXPECT_NE(exit.find("\"exit_status\":255"), std::string::npos) << events.all();
  EXPECT_TRUE(waitForTask(id, "STOPPED")) << g_containerd->ctr({"task", "ls"}).output;
  EXPECT_NE(g_containerd->log().find("qemu killed by signal 9"), std::string::npos)
      << "the shim's log does not say why: " << g_containerd->log();

  auto removed = g_containerd->ctr({"task", "rm", id}, 30000);
  EXPECT_EQ(removed.exit_code, 0) << removed.output;
  auto container = g_containerd->ctr({"containers", "rm", id}, 30000);
  EXPECT_EQ(container.exit_code, 0) << container.output;
  EXPECT_TRUE(waitForTask(id, ""));
  expectNothingLeft(f);
}

// A pod's VM dies under its sandbox and a member container: both tasks exit, and removing
// them leaves nothing (the shim exits with its last task; the member's rootfs disk goes).
TEST_F(ShimFaultE2eTest, PodVmmKilled_EveryContainerExitsAndIsRemoved) {
  const std::string pod = "fault-pod";
  const std::string member = pod + "-c1";
  const TaskFootprint f = runPod(pod);
  const auto disks = snapshotDisks();
  EXPECT_EQ(disks.size(), 2u) << "one rootfs disk per container";

  ASSERT_EQ(::kill(f.vmm_pid, SIGKILL), 0);
  EXPECT_TRUE(waitForTask(member, "STOPPED")) << g_containerd->ctr({"task", "ls"}).output;
  EXPECT_TRUE(waitForTask(pod, "STOPPED")) << g_containerd->ctr({"task", "ls"}).output;
  for (const auto& id : {member, pod}) {
    auto removed = g_containerd->ctr({"task", "rm", id}, 30000);
    EXPECT_EQ(removed.exit_code, 0) << id << ": " << removed.output;
    auto container = g_containerd->ctr({"containers", "rm", id}, 30000);
    EXPECT_EQ(container.exit_code, 0) << id << ": " << container.output;
    EXPECT_TRUE(waitForTask(id, ""));
  }
  expectNothingLeft(f);
  for (const auto& disk : disks) EXPECT_FALSE(fs::exists(disk)) << "rootfs disk left: " << disk;
}

TEST_F(ShimFaultE2eTest, ShimKilled_ContainerdCleansUpThroughDelete) {
  const std::string id = "fault-shim";
  const std::string bystander = "fault-bystander";
  EventLog events(g_containerd->root() + "/events-" + id + ".log");
  const TaskFootprint other = runDetached(bystander);
  const std::set<fs::path> disks_before = snapshotDisks();
  const TaskFootprint f = runDetached(id);
  ASSERT_TRUE(processRuns(f.shim_pid)) << g_containerd->log();
  ASSERT_FALSE(f.cgroup_dirs.empty()) << "the VMM runs in no nanovisor-* host cgroup";

  ASSERT_EQ(::kill(f.shim_pid, SIGKILL), 0);

  // containerd saw the connection close, ran `delete` (which succeeded) and published the
  // exit with the status `delete` gave (137, as containerd's own shims).
  const std::string exit = events.waitFor("/tasks/exit", "\"container_id\":\"" + id + "\"");
  EXPECT_NE(exit.find("\"exit_status\":137"), std::string::npos) << events.all();
  EXPECT_TRUE(waitForTask(id, "")) << g_containerd->ctr({"task", "ls"}).output;
  const std::string log = g_containerd->log();
  EXPECT_NE(logLine(log, "cleaning up after shim disconnected", "id=" + id), "") << log;
  EXPECT_EQ(logLine(log, "failed to clean up after shim disconnected", "id=" + id), "") << log;
  expectNothingLeft(f);
  EXPECT_EQ(snapshotDisks(), disks_before) << "the rootfs disk built for " << id << " is left";
  auto container = g_containerd->ctr({"containers", "rm", id}, 30000);
  EXPECT_EQ(container.exit_code, 0) << container.output;

  // `delete` again (containerd may run it more than once; its bundle is gone by now): nothing
  // to do, still a success.
  const fs::path gone_bundle = fs::path(g_containerd->root()) / "gone-bundle";
  fs::create_directories(gone_bundle);
  auto again = runShimDelete(id, gone_bundle);
  EXPECT_EQ(again.exit_code, 0) << again.output;
  // `delete` for a task whose shim lives (containerd runs it when a connection closes) leaves
  // that task alone, as the dead shim's `delete` did.
  auto live = runShimDelete(bystander, fs::path(g_containerd->root()) / "state" /
                                           "io.containerd.runtime.v2.task" / "default" /
                                           bystander);
  EXPECT_EQ(live.exit_code, 0) << live.output;
  EXPECT_TRUE(waitForTask(bystander, "RUNNING"));
  EXPECT_TRUE(processRuns(other.shim_pid));
  EXPECT_TRUE(processRuns(other.vmm_pid));
  EXPECT_TRUE(fs::exists(other.sandbox_dir));
  EXPECT_TRUE(fs::exists(other.shim_socket));
  auto exec = g_containerd->ctr({"task", "exec", "--exec-id", "still", bystander, "echo", "ok"},
                                60000);
  EXPECT_EQ(exec.exit_code, 0) << exec.output;

  EXPECT_EQ(g_containerd->ctr({"task", "kill", "-s", "SIGKILL", bystander}, 30000).exit_code, 0);
  EXPECT_TRUE(waitForTask(bystander, "STOPPED"));
  EXPECT_EQ(g_containerd->ctr({"task", "rm", bystander}, 30000).exit_code, 0);
  EXPECT_EQ(g_containerd->ctr({"containers", "rm", bystander}, 30000).exit_code, 0);
  expectNothingLeft(other);
}

// The shim of a pod dies with a member running: containerd's `delete` for both tasks leaves
// no VM, socket, state dir, cgroup, mount or rootfs disk of the pod.
TEST_F(ShimFaultE2eTest, PodShimKilled_ContainerdCleansUpBothTasks) {
  const std::string pod = "fault-pshim";
  const std::string member = pod + "-c1";
  const TaskFootprint f = runPod(pod);
  const auto disks = snapshotDisks();

  ASSERT_EQ(::kill(f.shim_pid, SIGKILL), 0);
  for (const auto& id : {member, pod}) {
    EXPECT_TRUE(waitForTask(id, "")) << id << ": " << g_containerd->ctr({"task", "ls"}).output;
    EXPECT_EQ(logLine(g_containerd->log(), "failed to clean up after shim disconnected",
                      "id=" + id),
              "")
        << g_containerd->log();
    auto container = g_containerd->ctr({"containers", "rm", id}, 30000);
    EXPECT_EQ(container.exit_code, 0) << id << ": " << container.output;
  }
  expectNothingLeft(f);
  for (const auto& disk : disks) EXPECT_FALSE(fs::exists(disk)) << "rootfs disk left: " << disk;
}

TEST_F(ShimFaultE2eTest, ContainerdRestarted_ReconnectsToTheRunningShim) {
  const std::string id = "fault-restart";
  const TaskFootprint f = runDetached(id);
  ASSERT_TRUE(processRuns(f.vmm_pid)) << g_containerd->log();

  auto restarted = g_containerd->containerd().restart();
  ASSERT_TRUE(restarted.has_value()) << restarted.error().message();

  // The same shim and VM, reloaded from containerd's state dir.
  EXPECT_TRUE(waitForTask(id, "RUNNING")) << g_containerd->ctr({"task", "ls"}).output
                                          << g_containerd->log();
  EXPECT_TRUE(processRuns(f.shim_pid));
  EXPECT_TRUE(processRuns(f.vmm_pid));
  auto exec = g_containerd->ctr({"task", "exec", "--exec-id", "after-restart", id, "sh", "-c",
                                 "echo reconnected; exit 3"}, 60000);
  EXPECT_EQ(exec.exit_code, 3) << exec.output << g_containerd->log();
  EXPECT_NE(exec.output.find("reconnected"), std::string::npos) << exec.output;

  auto killed = g_containerd->ctr({"task", "kill", "-s", "SIGKILL", id}, 30000);
  EXPECT_EQ(killed.exit_code, 0) << killed.output;
  EXPECT_TRUE(waitForTask(id, "STOPPED")) << g_containerd->log();
  auto removed = g_containerd->ctr({"task", "rm", id}, 30000);
  EXPECT_EQ(removed.exit_code, 0) << removed.output;
  auto container = g_containerd->ctr({"containers", "rm", id}, 30000);
  EXPECT_EQ(container.exit_code, 0) << container.output;
  expectNothingLeft(f);
}

TEST_F(ShimFaultE2eTest, VmmKilledWhileContainerdIsDown_TaskIsStoppedAfterRestart) {
  const std::string id = "fault-down";
  const TaskFootprint f = runDetached(id);
  ASSERT_TRUE(processRuns(f.vmm_pid)) << g_containerd->log();

  ASSERT_TRUE(g_containerd->containerd().stop()) << "containerd did not stop on SIGTERM";
  ASSERT_EQ(::kill(f.vmm_pid, SIGKILL), 0);
  EXPECT_TRUE(waitForExit(f.vmm_pid));
  auto restarted = g_containerd->containerd().restart();
  ASSERT_TRUE(restarted.has_value()) << restarted.error().message();

  // The shim kept the exit while nobody listened: the reloaded task is STOPPED, and removable.
  EXPECT_TRUE(waitForTask(id, "STOPPED")) << g_containerd->ctr({"task", "ls"}).output
                                          << g_containerd->log();
  auto removed = g_containerd->ctr({"task", "rm", id}, 30000);
  EXPECT_EQ(removed.exit_code, 0) << removed.output;
  auto container = g_containerd->ctr({"containers", "rm", id}, 30000);
  EXPECT_EQ(container.exit_code, 0) << container.output;
  expectNothingLeft(f);
}

}  // namespace
}  // namespace nv
