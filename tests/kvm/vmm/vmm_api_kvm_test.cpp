// SPDX-License-Identifier: Apache-2.0
// KVM test of the control API: runs nanovisor-vmm with the test guest ("test=api") and
// --api-sock, and drives it with the project's ttrpc client. Effects are checked by what the
// guest shows (its console, the disk data it reads), never by timing: a paused guest prints no
// tick and takes no exit between two Stats calls; after ReplaceDiskMedia it reads the new
// file; after Shutdown it reboots through the i8042 and the VMM exits.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <set>

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <regex>
#include <sstream>
#include <thread>

#include "common/subprocess.h"
#include "common/ttrpc/client.h"
#include "common/ttrpc/status.h"
#include "proto/vmm_api.pb.h"

namespace nv::vmm {
namespace {

namespace fs = std::filesystem;
namespace pb = nanovisor::vmm::v1;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr const char* kService = "nanovisor.vmm.v1.Vmm";
constexpr milliseconds kCallTimeout{30000};
// Waiting for an event, not a timed assertion: the guest is slow on a PVM host.
constexpr seconds kEventDeadline{240};

std::string readAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void writeDisk(const fs::path& path, const std::string& head, size_t bytes) {
  std::string data(bytes, '\0');
  std::memcpy(data.data(), head.data(), head.size());
  std::ofstream(path, std::ios::binary) << data;
}

// Highest complete "tick N\n" line the guest printed (the last line may be half written).
uint64_t lastTick(const std::string& console) {
  static const std::regex line("tick (\\d+)\n");
  uint64_t last = 0;
  for (auto it = std::sregex_iterator(console.begin(), console.end(), line);
       it != std::sregex_iterator(); ++it) {
    last = std::stoull((*it)[1]);
  }
  return last;
}

class VmmApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int fd = ::open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
      GTEST_SKIP() << "/dev/kvm cannot be opened: " << std::strerror(errno);
    }
    ::close(fd);
    // Parameterised tests are named "Name/0": keep the directory one level deep.
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::replace(name.begin(), name.end(), '/', '_');
    dir_ = fs::temp_directory_path() / ("nv-vmm-api-" + std::to_string(::getpid()) + "-" + name);
    fs::create_directories(dir_);
    sock_ = dir_ / "api.sock";
    console_ = dir_ / "console.log";
  }
  void TearDown() override {
    client_.reset();
    vmm_.reset();  // kills a VMM a failed test left running
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  void spawnVmm(const std::string& cmdline, const std::vector<std::string>& disks,
                const std::vector<std::string>& extra_args = {},
                const std::vector<std::string>& extra_env = {}) {
    SpawnOptions spawn;
    spawn.argv = {NV_VMM_BINARY, "--kernel", NV_TEST_GUEST_PATH, "--cmdline", cmdline,
                  "--memory", "64", "--console", console_.string(), "--api-sock",
                  sock_.string(), "--log-level", "info"};
    for (const auto& d : disks) {
      spawn.argv.insert(spawn.argv.end(), {"--disk", d});
    }
    spawn.argv.insert(spawn.argv.end(), extra_args.begin(), extra_args.end());
    spawn.extra_env = extra_env;
    spawn.stdout_path = (dir_ / "vmm.log").string();
    spawn.stderr_path = "=stdout";
    spawn.die_with_parent = true;
    auto process = Subprocess::spawn(spawn);
    ASSERT_TRUE(process) << process.error().message();
    vmm_.emplace(std::move(*process));
  }

  void start(const std::string& cmdline, const std::vector<std::string>& disks,
             const std::vector<std::string>& extra_args = {}) {
    ASSERT_NO_FATAL_FAILURE(spawnVmm(cmdline, disks, extra_args));
    ASSERT_TRUE(waitFor([&] { return fs::exists(sock_) || vmm_->wait(milliseconds(0)); }))
        << readAll(dir_ / "vmm.log");
    ASSERT_FALSE(vmm_->exited()) << readAll(dir_ / "vmm.log");
    auto client = ttrpc::Client::connect(io_.context(), sock_.string());
    ASSERT_TRUE(client) << client.error().message();
    client_.emplace(std::move(*client));
  }

  template <class Resp, class Req>
  Result<Resp> call(const std::string& method, const Req& req) {
    return client_->callTyped<Resp>(kService, method, req, kCallTimeout);
  }

  // Polls `done` until it holds or the event deadline passes.
  bool waitFor(const std::function<bool()>& done) {
    auto deadline = std::chrono::steady_clock::now() + kEventDeadline;
    while (std::chrono::steady_clock::now() < deadline) {
      if (done()) return true;
      std::this_thread::sleep_for(milliseconds(20));
    }
    return done();
  }
  bool waitConsole(const std::string& text) {
    return waitFor([&] { return readAll(console_).find(text) != std::string::npos; });
  }
  // Waits for the VMM to exit; returns its exit code, or -1.
  int waitExit() {
    auto status = vmm_->wait(std::chrono::duration_cast<milliseconds>(kEventDeadline));
    return status ? waitStatusToExitCode(*status) : -1;
  }

  fs::path dir_, sock_, console_;
  ttrpc::IoThread io_;
  std::optional<Subprocess> vmm_;
  std::optional<ttrpc::Client> client_;
};

TEST_F(VmmApiTest, DescribePauseResumeStatsReplaceShutdown) {
  const fs::path disk_a = dir_ / "a.img", disk_b = dir_ / "b.img";
  writeDisk(disk_a, "FIRST-DISK-DATA!", 1 << 20);
  writeDisk(disk_b, "SECOND-MEDIA-OK!", 2 << 20);
  ASSERT_NO_FATAL_FAILURE(start("test=api", {disk_a.string()}));
  ASSERT_TRUE(waitConsole("disk capacity=2048 status=0 data=[FIRST-DISK-DATA!]"))
      << readAll(console_);
  ASSERT_TRUE(waitConsole("tick 1\n")) << readAll(console_);

  auto describe = call<pb::DescribeResponse>("Describe", pb::DescribeRequest{});
  ASSERT_TRUE(describe) << describe.error().message();
  EXPECT_EQ(describe->cpus(), 1U);
  EXPECT_EQ(describe->memory_mib(), 64U);
  EXPECT_EQ(describe->state(), pb::VM_STATE_RUNNING);
  EXPECT_EQ(describe->pid(), vmm_->pid());
  ASSERT_EQ(describe->disks_size(), 1);
  EXPECT_EQ(describe->disks(0).path(), disk_a.string());
  EXPECT_EQ(describe->disks(0).capacity_sectors(), 2048U);
  EXPECT_NE(describe->cmdline().find("test=api virtio_mmio.device=4K@0xd0000000:5"),
            std::string::npos) << describe->cmdline();

  // Paused: no vCPU exit and no new tick between two Stats calls, however far apart.
  ASSERT_TRUE(call<pb::PauseResponse>("Pause", pb::PauseRequest{}));
  auto paused1 = call<pb::StatsResponse>("Stats", pb::StatsRequest{});
  ASSERT_TRUE(paused1) << paused1.error().message();
  EXPECT_EQ(paused1->state(), pb::VM_STATE_PAUSED);
  const std::string console_paused = readAll(console_);
  const uint64_t tick_paused = lastTick(console_paused);
  EXPECT_GT(tick_paused, 0U);
  // Pause is idempotent; Describe and ReplaceDiskMedia work while paused.
  ASSERT_TRUE(call<pb::PauseResponse>("Pause", pb::PauseRequest{}));
  pb::ReplaceDiskMediaRequest replace;
  replace.set_index(0);
  replace.set_path(disk_b.string());
  auto replaced = call<pb::ReplaceDiskMediaResponse>("ReplaceDiskMedia", replace);
  ASSERT_TRUE(replaced) << replaced.error().message();
  EXPECT_EQ(replaced->capacity_sectors(), 4096U);
  auto paused2 = call<pb::StatsResponse>("Stats", pb::StatsRequest{});
  ASSERT_TRUE(paused2);
  ASSERT_EQ(paused2->vcpu_exits_size(), 1);
  EXPECT_EQ(paused2->vcpu_exits(0), paused1->vcpu_exits(0)) << "a paused vCPU took exits";
  EXPECT_EQ(readAll(console_), console_paused) << "the guest printed while paused";
  ASSERT_EQ(paused2->disks_size(), 1);
  EXPECT_EQ(paused2->disks(0).media_changes(), 1U);

  // Resumed: the guest ticks on, sees the config change and reads the new media.
  ASSERT_TRUE(call<pb::ResumeResponse>("Resume", pb::ResumeRequest{}));
  ASSERT_TRUE(waitConsole("media changed capacity=4096 status=0 data=[SECOND-MEDIA-OK!]"))
      << readAll(console_);
  ASSERT_TRUE(waitFor([&] { return lastTick(readAll(console_)) > tick_paused + 1; }));
  auto running = call<pb::StatsResponse>("Stats", pb::StatsRequest{});
  ASSERT_TRUE(running);
  EXPECT_EQ(running->state(), pb::VM_STATE_RUNNING);
  EXPECT_GT(running->vcpu_exits(0), paused2->vcpu_exits(0));
  EXPECT_EQ(running->disks(0).requests(), 2U);  // sector 0 before and after the replace
  EXPECT_GT(running->vmm_rss_bytes(), 0U);
  EXPECT_GT(running->boot_time_us(), 0U);

  // Shutdown: Ctrl-Alt-Del through the i8042; the guest reboots and the VMM exits with 0.
  pb::ShutdownRequest shutdown;
  shutdown.set_deadline_ms(600000);
  ASSERT_TRUE(call<pb::ShutdownResponse>("Shutdown", shutdown));
  EXPECT_EQ(waitExit(), 0) << readAll(dir_ / "vmm.log");
  EXPECT_NE(readAll(console_).find("ctrl-alt-del: rebooting"), std::string::npos);
  EXPECT_NE(readAll(dir_ / "vmm.log").find("guest reset through the i8042"), std::string::npos)
      << readAll(dir_ / "vmm.log");
  EXPECT_FALSE(fs::exists(sock_)) << "the VMM left its control socket behind";
}

TEST_F(VmmApiTest, InvalidRequests_GetClearErrorsAndChangeNothing) {
  const fs::path disk_a = dir_ / "a.img";
  writeDisk(disk_a, "FIRST-DISK-DATA!", 1 << 20);
  ASSERT_NO_FATAL_FAILURE(start("test=api", {disk_a.string() + ",ro"}));
  std::ofstream(dir_ / "odd.img") << std::string(1000, 'x');
  std::ofstream(dir_ / "empty.img");
  writeDisk(dir_ / "ok.img", "x", 4096);
  struct Case {
    uint32_t index;
    std::string path;
    bool read_only;
    ttrpc::StatusCode code;
    std::string message;
  };
  const Case cases[] = {
      {1, (dir_ / "ok.img").string(), true, ttrpc::StatusCode::kInvalidArgument,
       "disk index 1 out of range"},
      {0, "", true, ttrpc::StatusCode::kInvalidArgument, "path is empty"},
      {0, "relative.img", true, ttrpc::StatusCode::kInvalidArgument, "is not absolute"},
      {0, (dir_ / ".." / "x.img").string(), true, ttrpc::StatusCode::kInvalidArgument,
       "'..' component"},
      {0, (dir_ / "missing.img").string(), true, ttrpc::StatusCode::kNotFound, "does not exist"},
      {0, dir_.string(), true, ttrpc::StatusCode::kInvalidArgument, "not a regular file"},
      {0, (dir_ / "odd.img").string(), true, ttrpc::StatusCode::kInvalidArgument,
       "not a multiple of 512"},
      {0, (dir_ / "empty.img").string(), true, ttrpc::StatusCode::kInvalidArgument, "is empty"},
      {0, (dir_ / "ok.img").string(), false, ttrpc::StatusCode::kInvalidArgument,
       "disk is read-only"},
  };
  for (const auto& c : cases) {
    pb::ReplaceDiskMediaRequest req;
    req.set_index(c.index);
    req.set_path(c.path);
    req.set_read_only(c.read_only);
    auto r = call<pb::ReplaceDiskMediaResponse>("ReplaceDiskMedia", req);
    ASSERT_FALSE(r) << c.path;
    EXPECT_EQ(ttrpc::statusCode(r.error()), static_cast<int32_t>(c.code)) << r.error().message();
    EXPECT_NE(r.error().message().find(c.message), std::string::npos) << r.error().message();
  }
  pb::ShutdownRequest too_long;
  too_long.set_deadline_ms(700000);
  auto s = call<pb::ShutdownResponse>("Shutdown", too_long);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message().find("deadline_ms 700000"), std::string::npos);
  auto unknown = client_->callSync(kService, "Reboot", "", kCallTimeout);
  ASSERT_FALSE(unknown);
  EXPECT_EQ(ttrpc::statusCode(unknown.error()),
            static_cast<int32_t>(ttrpc::StatusCode::kUnimplemented));

  auto describe = call<pb::DescribeResponse>("Describe", pb::DescribeRequest{});
  ASSERT_TRUE(describe);
  EXPECT_EQ(describe->disks(0).path(), disk_a.string());
  EXPECT_TRUE(describe->disks(0).read_only());
  EXPECT_EQ(describe->state(), pb::VM_STATE_RUNNING);

  ASSERT_TRUE(call<pb::KillResponse>("Kill", pb::KillRequest{}));
  EXPECT_EQ(waitExit(), 0);
  EXPECT_NE(readAll(dir_ / "vmm.log").find("killed through the control API"),
            std::string::npos);
}

TEST_F(VmmApiTest, ShutdownIgnoredByGuest_VmmStopsAtDeadline) {
  const fs::path disk_a = dir_ / "a.img";
  writeDisk(disk_a, "FIRST-DISK-DATA!", 1 << 20);
  ASSERT_NO_FATAL_FAILURE(start("test=api cad=ignore", {disk_a.string()}));
  ASSERT_TRUE(waitConsole("tick 1\n")) << readAll(console_);
  // Shutdown of a paused VM resumes it so the guest can react.
  ASSERT_TRUE(call<pb::PauseResponse>("Pause", pb::PauseRequest{}));
  pb::ShutdownRequest shutdown;
  shutdown.set_deadline_ms(300);
  ASSERT_TRUE(call<pb::ShutdownResponse>("Shutdown", shutdown));
  EXPECT_EQ(waitExit(), 0);
  EXPECT_NE(readAll(dir_ / "vmm.log").find("did not reboot within 300 ms of Ctrl-Alt-Del"),
            std::string::npos)
      << readAll(dir_ / "vmm.log");
  EXPECT_EQ(readAll(console_).find("ctrl-alt-del: rebooting"), std::string::npos);
}

TEST_F(VmmApiTest, DescribeAndStats_ShowTheVirtioNetDevice) {
  if (::access("/dev/net/tun", F_OK) != 0) {
    GTEST_SKIP() << "/dev/net/tun is missing";
  }
  // The VMM creates the tap itself (not persistent: it goes with the VMM). Nobody brings it up,
  // so the guest's hello frame is refused by the tap: a drop and a tap error, counted.
  const std::string tap = "nva" + std::to_string(::getpid() % 1000000);
  ASSERT_NO_FATAL_FAILURE(
      start("test=net mode=echo", {},
            {"--net", "tap=" + tap + ",mac=52:54:00:00:00:07,bps=10m,pps=1000"}));
  ASSERT_TRUE(waitConsole("net mac 52:54:00:00:00:07\n")) << readAll(dir_ / "vmm.log");
  auto described = call<pb::DescribeResponse>("Describe", pb::DescribeRequest{});
  ASSERT_TRUE(described) << described.error().message();
  ASSERT_EQ(described->nets_size(), 1);
  EXPECT_EQ(described->nets(0).index(), 0U);
  EXPECT_EQ(described->nets(0).tap(), tap);
  EXPECT_EQ(described->nets(0).tap_fd(), -1);
  EXPECT_EQ(described->nets(0).mac(), "52:54:00:00:00:07");
  EXPECT_EQ(described->nets(0).bps(), "10485760");  // bytes/s, as formatRateLimit
  EXPECT_EQ(described->nets(0).pps(), "1000");
  pb::StatsResponse stats;
  ASSERT_TRUE(waitFor([&] {
    auto s = call<pb::StatsResponse>("Stats", pb::StatsRequest{});
    if (s) stats = *s;
    return s && stats.nets_size() == 1 &&
           stats.nets(0).tx_frames() + stats.nets(0).tx_dropped() == 1;
  })) << stats.DebugString() << readAll(dir_ / "vmm.log");
  EXPECT_EQ(stats.nets(0).index(), 0U);
  EXPECT_EQ(stats.nets(0).tx_dropped(), stats.nets(0).tap_errors());
  EXPECT_EQ(stats.nets(0).tx_bytes(), stats.nets(0).tx_frames() * 60);
  EXPECT_EQ(stats.nets(0).rx_frames(), 0U);
  EXPECT_EQ(stats.nets(0).queue_errors(), 0U);
  EXPECT_EQ(stats.nets(0).tx_throttled(), 0U);
  ASSERT_TRUE(call<pb::KillResponse>("Kill", pb::KillRequest{}));
  EXPECT_EQ(waitExit(), 0);
}

// --- seccomp: every thread of the running VMM is filtered; the test hook's forbidden syscall
// kills it with SIGSYS (docs/security.md).

// "Seccomp" and "Seccomp_filters" of every thread of `pid`, by thread name.
struct ThreadSeccomp {
  std::string name;
  int mode = -1;
  int filters = -1;
};
std::vector<ThreadSeccomp> threadSeccomp(pid_t pid) {
  std::vector<ThreadSeccomp> out;
  for (const auto& task : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task")) {
    ThreadSeccomp t;
    std::ifstream status(task.path() / "status");
    for (std::string line; std::getline(status, line);) {
      if (line.rfind("Name:\t", 0) == 0) t.name = line.substr(6);
      if (line.rfind("Seccomp:\t", 0) == 0) t.mode = std::stoi(line.substr(9));
      if (line.rfind("Seccomp_filters:\t", 0) == 0) t.filters = std::stoi(line.substr(17));
    }
    out.push_back(t);
  }
  return out;
}

TEST_F(VmmApiTest, Seccomp_EveryThreadOfTheRunningVmmIsFiltered) {
  const fs::path disk_a = dir_ / "a.img";
  writeDisk(disk_a, "FIRST-DISK-DATA!", 1 << 20);
  ASSERT_NO_FATAL_FAILURE(start("test=api", {disk_a.string()}));
  ASSERT_TRUE(waitConsole("tick 1\n")) << readAll(console_);
  // A Stats call first: the API thread has served a request under its filter.
  ASSERT_TRUE(call<pb::StatsResponse>("Stats", pb::StatsRequest{}));
  auto threads = threadSeccomp(vmm_->pid());
  std::set<std::string> names;
  for (const auto& t : threads) {
    names.insert(t.name);
    EXPECT_EQ(t.mode, 2) << t.name << " is not in seccomp filter mode";
    EXPECT_GE(t.filters, 1) << t.name;
  }
  // main (named after the binary), the signal watcher, the device loop, the API, vCPU 0 (and,
  // on some hosts, KVM's kvm-nx-lpage-recovery worker, listed among the VMM's tasks).
  for (const char* name : {"nanovisor-vmm", "nv-signals", "nv-devices", "nv-api", "nv-vcpu0"}) {
    EXPECT_EQ(names.count(name), 1U) << name;
  }
  // The filtered VMM still stops cleanly (the main thread's exit path is allowed).
  ASSERT_TRUE(call<pb::KillResponse>("Kill", pb::KillRequest{}));
  EXPECT_EQ(waitExit(), 0) << readAll(dir_ / "vmm.log");
}

TEST_F(VmmApiTest, Seccomp_SigtermStopsTheFilteredVmmCleanly) {
  const fs::path disk_a = dir_ / "a.img";
  writeDisk(disk_a, "FIRST-DISK-DATA!", 1 << 20);
  ASSERT_NO_FATAL_FAILURE(start("test=api", {disk_a.string()}));
  ASSERT_TRUE(waitConsole("tick 1\n")) << readAll(console_);
  ASSERT_TRUE(vmm_->signal(SIGTERM));
  EXPECT_EQ(waitExit(), 0) << readAll(dir_ / "vmm.log");
  EXPECT_NE(readAll(dir_ / "vmm.log").find("stopped by signal"), std::string::npos)
      << readAll(dir_ / "vmm.log");
  EXPECT_FALSE(fs::exists(sock_)) << "the VMM left its control socket behind";
}

TEST_F(VmmApiTest, SeccompOff_ThreadsAreUnfilteredAndTheLogSaysSo) {
  const fs::path disk_a = dir_ / "a.img";
  writeDisk(disk_a, "FIRST-DISK-DATA!", 1 << 20);
  ASSERT_NO_FATAL_FAILURE(start("test=api", {disk_a.string()}, {"--seccomp", "off"}));
  ASSERT_TRUE(waitConsole("tick 1\n")) << readAll(console_);
  for (const auto& t : threadSeccomp(vmm_->pid())) {
    EXPECT_EQ(t.mode, 0) << t.name;
  }
  EXPECT_NE(readAll(dir_ / "vmm.log").find("seccomp filters are off"), std::string::npos);
  ASSERT_TRUE(call<pb::KillResponse>("Kill", pb::KillRequest{}));
  EXPECT_EQ(waitExit(), 0);
}

class VmmSeccompHookTest : public VmmApiTest,
                           public ::testing::WithParamInterface<const char*> {};

TEST_P(VmmSeccompHookTest, ForbiddenSyscallAfterTheFilter_KillsTheVmmWithSigsys) {
  const fs::path disk_a = dir_ / "a.img";
  writeDisk(disk_a, "FIRST-DISK-DATA!", 1 << 20);
  ASSERT_NO_FATAL_FAILURE(spawnVmm("test=api", {disk_a.string()}, {},
                                   {std::string("NANOVISOR_VMM_TEST_FORBIDDEN_SYSCALL=") +
                                    GetParam()}));
  auto status = vmm_->wait(std::chrono::duration_cast<milliseconds>(kEventDeadline));
  ASSERT_TRUE(status) << "the VMM did not die: " << readAll(dir_ / "vmm.log");
  ASSERT_TRUE(WIFSIGNALED(*status)) << "exit status " << waitStatusToExitCode(*status) << ": "
                                    << readAll(dir_ / "vmm.log");
  EXPECT_EQ(WTERMSIG(*status), SIGSYS);
}

INSTANTIATE_TEST_SUITE_P(ThreadClasses, VmmSeccompHookTest,
                         ::testing::Values("vmm", "vcpu", "api"));

}  // namespace
}  // namespace nv::vmm
