// SPDX-License-Identifier: Apache-2.0
// docs/security.md, proved on real micro-VMs started by the CLI (qemu driver, TCG here): the
// jailed VMM's credentials and namespaces, its per-sandbox host cgroup, and secrets that reach
// the workload but no host file, log or `inspect`. Each test uses a private state dir and
// image store; nothing (sandbox dir, VMM, mount, cgroup) is left afterwards.
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/subprocess.h"
#include "tests/support/nanovisor_env.h"

namespace nv {
namespace {

using std::chrono::milliseconds;

using Env = test::NanovisorEnv;

Env& env() {
  static Env e = test::makeNanovisorEnv("security-e2e", "the VMM jail and host cgroups need root");
  return e;
}

using test::filesContaining;
using test::readFile;

// "Key:\tvalue" lines of /proc/<pid>/status.
std::map<std::string, std::string> procStatus(int pid) {
  std::map<std::string, std::string> out;
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    auto value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(" \t"));
    out[line.substr(0, colon)] = value;
  }
  return out;
}

// controller ("memory", "pids", "cpu") -> the host directory of process `pid`'s cgroup for it:
// v2 (one "0::/path" line) or v1 (a line per hierarchy, mounted at /sys/fs/cgroup/<name>).
std::map<std::string, std::filesystem::path> cgroupDirs(int pid) {
  std::map<std::string, std::filesystem::path> out;
  std::ifstream in("/proc/" + std::to_string(pid) + "/cgroup");
  std::string unified;
  for (std::string line; std::getline(in, line);) {
    const auto first = line.find(':');
    const auto second = line.find(':', first + 1);
    const std::string names = line.substr(first + 1, second - first - 1);
    const std::string path = line.substr(second + 1);
    if (names.empty()) unified = path;
    for (const char* c : {"memory", "pids", "cpu"}) {
      std::istringstream list(names);
      for (std::string name; std::getline(list, name, ',');) {
        if (name == c) out[c] = std::filesystem::path("/sys/fs/cgroup") / c / path.substr(1);
      }
    }
  }
  if (out.empty() && !unified.empty()) {
    for (const char* c : {"memory", "pids", "cpu"}) {
      out[c] = std::filesystem::path("/sys/fs/cgroup") / unified.substr(1);
    }
  }
  return out;
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

class SecurityE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!env().skip.empty()) GTEST_SKIP() << env().skip;
  }
  void TearDown() override {
    if (!env().skip.empty()) return;
    EXPECT_EQ(env().leftovers(), "") << "left behind";
  }

  static std::filesystem::path state() { return env().state(); }

  RunResult nv(const std::string& args, milliseconds timeout = milliseconds(120000)) {
    return env().nv(args, timeout);
  }

  // `inspect ID` as JSON (null when it failed).
  nlohmann::json inspect(const std::string& id) {
    auto r = nv("inspect " + id + " 2>/dev/null");
    return nlohmann::json::parse(r.output, nullptr, false);
  }
};

TEST_F(SecurityE2eTest, Jail_QemuIsSeccompedUnprivilegedAndInItsOwnNamespaces) {
  auto started = nv("run -d --name jailed busybox sleep 600");
  ASSERT_EQ(started.exit_code, 0) << started.output;
  auto state_json = inspect("jailed");
  ASSERT_TRUE(state_json.is_object()) << nv("inspect jailed").output;
  const int pid = state_json.value("vmm_pid", 0);
  ASSERT_GT(pid, 0);

  auto status = procStatus(pid);
  EXPECT_EQ(status["Seccomp"], "2");
  EXPECT_EQ(status["NoNewPrivs"], "1");
  EXPECT_EQ(status["CapEff"], "0000000000000000");
  EXPECT_EQ(status["CapPrm"], "0000000000000000");
  EXPECT_EQ(status["CapBnd"], "0000000000000000");
  const uint64_t uid = std::stoull(status["Uid"]);
  EXPECT_GE(uid, 0x70000000u) << status["Uid"];
  EXPECT_LT(uid, 0x70010000u) << status["Uid"];
  EXPECT_EQ(status["NSpid"].substr(status["NSpid"].rfind('\t') + 1), "1")
      << "QEMU is pid 1 of its own pid namespace: " << status["NSpid"];
  for (const char* ns : {"mnt", "pid", "ipc", "uts", "net", "cgroup"}) {
    std::error_code ec;
    const auto theirs = std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/ns/" + ns, ec);
    const auto ours = std::filesystem::read_symlink(std::string("/proc/self/ns/") + ns, ec);
    EXPECT_NE(theirs, ours) << ns << " namespace is the host's";
  }
  // The jail holds only what the VM needs: no /proc, /home, /etc/passwd or host /tmp.
  const std::string mounts = readFile("/proc/" + std::to_string(pid) + "/mountinfo");
  EXPECT_NE(mounts.find(" / / ro,"), std::string::npos) << mounts;
  EXPECT_EQ(mounts.find(" /proc "), std::string::npos) << mounts;
  EXPECT_EQ(mounts.find(" /home "), std::string::npos) << mounts;
  // The host reaches QMP and the agent through the sockets dir (exec goes through the agent).
  auto exec = nv("exec jailed echo through the jail");
  EXPECT_EQ(exec.exit_code, 0) << exec.output;
  EXPECT_EQ(exec.output, "through the jail\n");
  EXPECT_TRUE(std::filesystem::exists(state() / "jailed" / "jail"));

  EXPECT_EQ(nv("rm -f jailed").exit_code, 0);
  EXPECT_FALSE(std::filesystem::exists(state() / "jailed"));
  EXPECT_FALSE(std::filesystem::exists("/proc/" + std::to_string(pid) + "/status"));
}

// The per-mount options of the mount at `target` in a mountinfo text ("" when absent).
std::string mountOptions(const std::string& mountinfo, const std::string& target) {
  std::istringstream lines(mountinfo);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream fields(line);
    std::string id, parent, dev, root, point, options;
    fields >> id >> parent >> dev >> root >> point >> options;
    if (point == target) return options;
  }
  return "";
}

TEST_F(SecurityE2eTest, Volume_JailedQemuGetsOnlyIdMappedNoexecBindsOfTheVolumes) {
  const auto rw = std::filesystem::path(env().root) / "vol-rw";
  const auto ro = std::filesystem::path(env().root) / "vol-ro";
  std::filesystem::create_directories(rw);
  std::filesystem::create_directories(ro);
  auto started = nv("run -d --name vols -v " + rw.string() + ":/rw -v " + ro.string() +
                    ":/ro:ro busybox sleep 600");
  ASSERT_EQ(started.exit_code, 0) << started.output;
  auto state_json = inspect("vols");
  ASSERT_TRUE(state_json.is_object());
  const int pid = state_json.value("vmm_pid", 0);
  ASSERT_GT(pid, 0);
  const std::string mounts = readFile("/proc/" + std::to_string(pid) + "/mountinfo");
  const std::string rw_options = mountOptions(mounts, "/shares/volume0");
  const std::string ro_options = mountOptions(mounts, "/shares/volume1");
  EXPECT_EQ(rw_options.rfind("rw,nosuid,nodev,noexec,", 0), 0u) << mounts;
  EXPECT_NE(rw_options.find(",idmapped"), std::string::npos) << mounts;
  EXPECT_EQ(ro_options.rfind("ro,nosuid,nodev,noexec,", 0), 0u) << mounts;
  EXPECT_NE(ro_options.find(",idmapped"), std::string::npos) << mounts;
  // QEMU's 9p server sets modes through /proc/self/fd: a procfs of the jail's pid namespace
  // with nothing but pid directories (no /proc/sys, /proc/kcore), read-only.
  EXPECT_EQ(mountOptions(mounts, "/proc").rfind("ro,nosuid,nodev,noexec,", 0), 0u) << mounts;
  EXPECT_NE(mounts.find("subset=pid"), std::string::npos) << mounts;
  EXPECT_EQ(mounts.find(" /home "), std::string::npos) << mounts;
  // The guest writes as the directory's owner (root here), not as the jail's uid.
  auto wrote = nv("exec vols sh -c 'echo x > /rw/f'");
  EXPECT_EQ(wrote.exit_code, 0) << wrote.output;
  struct stat st {};
  ASSERT_EQ(::stat((rw / "f").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(nv("rm -f vols").exit_code, 0);
}

TEST_F(SecurityE2eTest, Jail_KeptSandboxKeepsConsoleLogButNoJailOrSockets) {
  auto r = nv("run --name kept busybox true");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_FALSE(std::filesystem::exists(state() / "kept" / "jail"));
  EXPECT_FALSE(std::filesystem::exists(state() / "kept" / "vm" / "agent.sock"));
  EXPECT_FALSE(std::filesystem::exists(state() / "kept" / "vm" / "qmp.sock"));
  EXPECT_TRUE(std::filesystem::exists(state() / "kept" / "vm" / "console.log"));
  EXPECT_EQ(nv("rm kept").exit_code, 0);
}

TEST_F(SecurityE2eTest, Cgroup_QemuIsLimitedBySandboxSizeAndTheCgroupGoesWithIt) {
  auto started = nv("run -d --cpus 2 --name limited busybox sleep 600");
  ASSERT_EQ(started.exit_code, 0) << started.output;
  const int pid = inspect("limited").value("vmm_pid", 0);
  ASSERT_GT(pid, 0);
  auto dirs = cgroupDirs(pid);
  ASSERT_EQ(dirs.size(), 3u);
  for (const auto& [controller, dir] : dirs) {
    EXPECT_NE(dir.filename().string().find("nanovisor-limited-"), std::string::npos)
        << controller << " cgroup " << dir;
  }
  const bool v2 = std::filesystem::exists(dirs["memory"] / "memory.max");
  // 256 MiB of guest RAM (the default) + 128 MiB VMM overhead (+ 128 MiB TCG cache under TCG).
  const std::string memory =
      trimmed(readFile(dirs["memory"] / (v2 ? "memory.max" : "memory.limit_in_bytes")));
  EXPECT_TRUE(memory == std::to_string(512ull << 20) || memory == std::to_string(384ull << 20))
      << memory;
  EXPECT_EQ(trimmed(readFile(dirs["pids"] / "pids.max")), "512");
  if (v2) {
    EXPECT_EQ(trimmed(readFile(dirs["cpu"] / "cpu.max")), "200000 100000");
  } else {
    EXPECT_EQ(trimmed(readFile(dirs["cpu"] / "cpu.cfs_quota_us")), "200000");
    EXPECT_EQ(trimmed(readFile(dirs["cpu"] / "cpu.cfs_period_us")), "100000");
  }
  // Every QEMU thread is in it (v1 lists threads in tasks; v2 in cgroup.threads).
  const std::string tasks = readFile(dirs["pids"] / (v2 ? "cgroup.threads" : "tasks"));
  std::error_code ec;
  for (const auto& t : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    EXPECT_NE(tasks.find(t.path().filename().string() + "\n"), std::string::npos)
        << "thread " << t.path().filename() << " is outside the sandbox cgroup";
  }

  EXPECT_EQ(nv("rm -f limited").exit_code, 0);
  for (const auto& [controller, dir] : dirs) {
    EXPECT_FALSE(std::filesystem::exists(dir)) << controller << " cgroup left: " << dir;
  }
}

TEST_F(SecurityE2eTest, Policy_NoExecSandboxRefusesExec) {
  auto started = nv("run -d --no-exec --name sealed busybox sleep 600");
  ASSERT_EQ(started.exit_code, 0) << started.output;
  auto exec = nv("exec sealed echo should not run");
  EXPECT_NE(exec.exit_code, 0) << exec.output;
  EXPECT_EQ(exec.output.find("should not run"), std::string::npos) << exec.output;
  EXPECT_EQ(std::count(exec.output.begin(), exec.output.end(), '\n'), 1) << exec.output;
  EXPECT_EQ(nv("rm -f sealed").exit_code, 0);
}

// A syscall outside nanovisor-vmm's allow-list kills it; `run` says so in one line and
// leaves nothing. The test hook makes each vCPU thread call one right after its filter is
// installed, before the guest runs, so this holds where KVM cannot boot Linux (PVM) too.
TEST_F(SecurityE2eTest, Seccomp_NanovisorVmmViolation_RunReportsItInOneLine) {
  if (::access("/dev/kvm", R_OK | W_OK) != 0) GTEST_SKIP() << "/dev/kvm is not usable here";
  auto r = test::shell("NANOVISOR_VMM_TEST_FORBIDDEN_SYSCALL=vcpu " + env().nanovisor +
                       " --hypervisor builtin --state-dir " + state().string() +
                       " --image-root " + env().root + "/images run --rm --name sigsys busybox true");
  EXPECT_EQ(r.exit_code, 125) << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  EXPECT_NE(r.output.find("killed by signal 31 (SIGSYS): seccomp violation"), std::string::npos)
      << r.output;
  // The VMM's cgroup can only go once every process in it is gone.
  EXPECT_EQ(test::shell("find /sys/fs/cgroup -maxdepth 4 -type d -name 'nanovisor-sigsys-*'")
                .output,
            "")
      << "the VMM's cgroup (and so maybe the VMM) is left";
}

class SecretTest : public SecurityE2eTest {
 protected:
  void SetUp() override {
    SecurityE2eTest::SetUp();
    if (IsSkipped()) return;
    // Bytes that appear nowhere else: a per-run random value.
    auto random = runCommand({"sh", "-c", "head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \\n'"},
                             milliseconds(5000));
    ASSERT_TRUE(random && random->output.size() == 32);
    secret_ = "nv-secret-" + random->output;
    file_ = env().root + "/token.txt";
    std::ofstream(file_) << secret_;
    auto hash = runCommand({"sh", "-c", "sha256sum < " + file_ + " | cut -d' ' -f1"},
                           milliseconds(5000));
    sha256_ = trimmed(hash->output);
  }
  void TearDown() override {
    std::filesystem::remove(file_);
    SecurityE2eTest::TearDown();
  }
  std::string secret_;
  std::string file_;
  std::string sha256_;
};

TEST_F(SecretTest, Secret_WorkloadReadsIt0400AsItsUserAndLogsDoNotHaveIt) {
  auto r = nv("--log-level debug run --rm -u 1000:1000 --secret id=token,src=" + file_ +
              " busybox sh -c 'sha256sum < /run/secrets/token | cut -d\" \" -f1; "
              "stat -c \"%a %u:%g\" /run/secrets/token; touch /run/secrets/x 2>/dev/null || echo ro'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find(sha256_ + "\n400 1000:1000\nro\n"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find(secret_), std::string::npos) << "the secret is in the CLI's output";
}

TEST_F(SecretTest, Secret_NotInTheStateDirConsoleLogOrInspect) {
  auto started = nv("--log-level debug run -d --name holder --secret id=token,src=" + file_ +
                    " busybox sh -c 'sha256sum < /run/secrets/token; sleep 600'");
  ASSERT_EQ(started.exit_code, 0) << started.output;
  std::string logs;
  for (int i = 0; i < 300 && logs.find(sha256_) == std::string::npos; ++i) {
    logs = nv("logs holder").output;
    std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_NE(logs.find(sha256_), std::string::npos) << "the workload did not read the secret: " << logs;
  EXPECT_EQ(filesContaining(state(), secret_), std::vector<std::string>{});
  EXPECT_TRUE(std::filesystem::exists(state() / "holder" / "vm" / "console.log"));
  EXPECT_EQ(readFile(state() / "holder" / "vm" / "console.log").find(secret_), std::string::npos);
  auto inspected = nv("inspect holder");
  EXPECT_EQ(inspected.exit_code, 0) << inspected.output;
  EXPECT_EQ(inspected.output.find(secret_), std::string::npos);
  EXPECT_EQ(inspected.output.find(file_), std::string::npos) << "inspect names the secret's file";
  EXPECT_EQ(nv("rm -f holder").exit_code, 0);
}

TEST_F(SecretTest, Secret_BadInput_OneLineErrors) {
  const std::pair<std::string, std::string> cases[] = {
      {"--secret token", "expected id=NAME,src=FILE"},
      {"--secret id=token", "expected id=NAME,src=FILE"},
      {"--secret id=../etc,src=" + file_, "must be a file name"},
      {"--secret id=t,src=/nonexistent/file", "cannot read /nonexistent/file"},
      {"--secret id=t,src=" + file_ + ",mode=0444", "unknown key 'mode'"},
      {"--secret id=t,src=" + file_ + " --secret id=t,src=" + file_, "given twice"},
  };
  for (const auto& [args, expected] : cases) {
    auto r = nv("run --rm " + args + " busybox true");
    EXPECT_EQ(r.exit_code, 125) << args;
    EXPECT_NE(r.output.find(expected), std::string::npos) << args << ": " << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << args << ": " << r.output;
  }
}

}  // namespace
}  // namespace nv
