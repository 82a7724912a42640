// SPDX-License-Identifier: Apache-2.0
// Fault injection through the real CLI (docs/security.md, "Faults"): the guest kernel panics,
// the agent crashes, a fork bomb fills the guest's task table (it used to kill the agent, PID 1, and with it the
// guest), the sandbox's rootfs image vanishes, libvirtd restarts. Each ends in a clear state
// (a one-line error naming the cause, `ps` showing what happened) and `rm` leaves nothing:
// no sandbox dir, VMM, mount, host cgroup or libvirt domain. (VMM killed, shim killed and
// containerd restarted are in tests/e2e/shim/shim_fault_e2e_test.cpp.)
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/subprocess.h"
#include "runtime/qmp_client.h"
#include "tests/support/nanovisor_env.h"

namespace nv {
namespace {

using std::chrono::milliseconds;
using Env = test::NanovisorEnv;

Env& env() {
  static Env e = test::makeNanovisorEnv("fault-e2e", "the VMM jail and host cgroups need root");
  return e;
}

std::string state() { return env().state(); }
using test::readFile;

size_t lines(const std::string& s) { return static_cast<size_t>(std::count(s.begin(), s.end(), '\n')); }

RunResult sh(const std::string& cmd, milliseconds timeout = milliseconds(120000)) {
  return test::shell(cmd, timeout);
}

RunResult nv(const std::string& args, milliseconds timeout = milliseconds(120000)) {
  return env().nv(args, timeout);
}

nlohmann::json inspect(const std::string& id) {
  return nlohmann::json::parse(nv("inspect " + id + " 2>/dev/null").output, nullptr, false);
}

// Host cgroup directories named after sandbox `id` (v1: one per controller; v2: one).
std::string cgroupsOf(const std::string& id) {
  return sh("find /sys/fs/cgroup -maxdepth 4 -type d -name 'nanovisor-" + id + "-*' 2>/dev/null")
      .output;
}

class FaultE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!env().skip.empty()) GTEST_SKIP() << env().skip;
  }
  void TearDown() override {
    if (!env().skip.empty()) return;
    EXPECT_EQ(env().leftovers(), "") << "left behind";
    EXPECT_EQ(sh("find /sys/fs/cgroup -maxdepth 4 -type d -name 'nanovisor-fault-*' | wc -l")
                  .output,
              "0\n")
        << "host cgroups left behind";
    // One failed test must not fail the next ones' checks.
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(state(), ec)) {
      if (e.is_directory()) (void)nv("rm -f " + e.path().filename().string());
    }
  }
};

// A QEMU wrapper (config `qemu_binary`, test-only) that appends `append` to the guest's
// kernel command line (-append) and gives QEMU a second QMP monitor, /vm/fault-qmp.sock, for
// the test. Returns the config file naming it.
std::string writeWrapperConfig(const std::string& name, const std::string& append) {
  const std::string wrapper = env().root + "/qemu-" + name + ".sh";
  std::ofstream(wrapper) << R"(#!/bin/sh
n=$#; next=
for a in "$@"; do
  if [ "$next" = 1 ]; then a="$a )" << append << R"("; next=; fi
  [ "$a" = "-append" ] && next=1
  set -- "$@" "$a"
done
shift $n
exec qemu-system-x86_64 "$@" -qmp unix:/vm/fault-qmp.sock,server=on,wait=off
)";
  ::chmod(wrapper.c_str(), 0755);
  const std::string config = env().root + "/" + name + ".toml";
  std::ofstream(config) << "qemu_binary = \"" << wrapper << "\"\n";
  return config;
}

// The guest kernel panics on an NMI the test injects through the wrapper's QMP monitor. The
// guest kernel has no MAGIC_SYSRQ and the workload cannot load modules, so a guest cannot
// panic itself on purpose; the host side of a panic is the same whatever caused it.
std::string writePanicConfig() {
  return writeWrapperConfig("panic", "sysctl.kernel.panic_on_unrecovered_nmi=1");
}

TEST_F(FaultE2eTest, GuestKernelPanic_RunEndsWithOneLineNamingItPsShowsFailedRmCleans) {
  const std::string config = writePanicConfig();
  const std::string out = env().root + "/panic.out";
  auto run = Subprocess::spawn({.argv = {env().nanovisor, "--config", config, "--state-dir",
                                         state(), "--image-root", env().root + "/images", "run",
                                         "--name", "fault-panic", "busybox", "sleep", "600"},
                                .stdout_path = out,
                                .stderr_path = "=stdout"});
  ASSERT_TRUE(run) << run.error().message();
  const auto vm_dir = std::filesystem::path(state()) / "fault-panic" / "vm";
  for (int i = 0; i < 1200; ++i) {
    auto s = inspect("fault-panic");
    if (s.is_object() && s.value("status", "") == "running") break;
    std::this_thread::sleep_for(milliseconds(100));
  }
  ASSERT_EQ(inspect("fault-panic").value("status", ""), "running") << readFile(out);
  const int vmm = inspect("fault-panic").value("vmm_pid", 0);
  {
    auto qmp = runtime::QmpClient::connect(vm_dir / "fault-qmp.sock", milliseconds(10000));
    ASSERT_TRUE(qmp) << qmp.error().message();
    auto nmi = qmp->execute("inject-nmi");
    ASSERT_TRUE(nmi) << nmi.error().message();
  }
  auto status = run->wait(milliseconds(60000));
  ASSERT_TRUE(status) << "run did not end after the guest panicked: " << readFile(out);
  const std::string said = readFile(out);
  EXPECT_NE(waitStatusToExitCode(*status), 0);
  EXPECT_EQ(lines(said), 1u) << said;
  EXPECT_NE(said.find("the guest kernel panicked: NMI: Not continuing"), std::string::npos)
      << said;
  EXPECT_NE(said.find((vm_dir / "console.log").string()), std::string::npos) << said;
  // The panic is kept, and the VM did not reboot (-no-reboot, panic=-1): its QEMU is gone.
  EXPECT_NE(readFile(vm_dir / "console.log").find("Kernel panic - not syncing"), std::string::npos);
  EXPECT_EQ(readFile("/proc/" + std::to_string(vmm) + "/cmdline").find("fault-panic"),
            std::string::npos)
      << "QEMU still runs after the panic";
  auto ps = nv("ps -a");
  EXPECT_NE(ps.output.find("fault-panic"), std::string::npos) << ps.output;
  EXPECT_NE(ps.output.find("failed"), std::string::npos) << ps.output;
  EXPECT_NE(inspect("fault-panic").value("error", "").find("the guest kernel panicked"),
            std::string::npos);
  EXPECT_EQ(cgroupsOf("fault-panic"), "");
  auto rm = nv("rm fault-panic");
  EXPECT_EQ(rm.exit_code, 0) << rm.output;
}

// The agent (PID 1) crashes as a bug would (nanovisor.test_crash=exec: an invalid instruction
// on its first exec): the guest kernel panics, exec fails with one line naming the agent's
// death, the sandbox shows failed and `rm` leaves nothing.
TEST_F(FaultE2eTest, AgentCrashed_ExecFailsNamingItPsShowsFailedRmCleans) {
  const std::string config = writeWrapperConfig("agent-crash", "nanovisor.test_crash=exec");
  auto started = nv("--config " + config + " run -d --name fault-agent busybox sleep 600");
  ASSERT_EQ(started.exit_code, 0) << started.output;
  const int vmm = inspect("fault-agent").value("vmm_pid", 0);
  ASSERT_GT(vmm, 0);
  auto exec = nv("--config " + config + " exec fault-agent true");
  EXPECT_NE(exec.exit_code, 0) << exec.output;
  EXPECT_EQ(lines(exec.output), 1u) << exec.output;
  // The VM stops (panic=-1, -no-reboot); the sandbox's owner records why.
  nlohmann::json sandbox;
  for (int i = 0; i < 600; ++i) {
    sandbox = inspect("fault-agent");
    if (sandbox.value("status", "") != "running") break;
    std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_EQ(sandbox.value("status", ""), "failed") << sandbox.dump();
  EXPECT_NE(sandbox.value("error", "").find("the guest agent (PID 1) died"), std::string::npos)
      << sandbox.dump();
  EXPECT_NE(readFile(std::filesystem::path(state()) / "fault-agent" / "vm" / "console.log")
                .find("Attempted to kill init"),
            std::string::npos);
  EXPECT_EQ(readFile("/proc/" + std::to_string(vmm) + "/cmdline").find("fault-agent"),
            std::string::npos)
      << "QEMU still runs after the agent died";
  auto again = nv("exec fault-agent true");
  EXPECT_NE(again.exit_code, 0);
  EXPECT_EQ(lines(again.output), 1u) << again.output;
  EXPECT_EQ(cgroupsOf("fault-agent"), "");
  auto rm = nv("rm fault-agent");
  EXPECT_EQ(rm.exit_code, 0) << rm.output;
}

TEST_F(FaultE2eTest, ForkBomb_TheAgentSurvivesAndTheSandboxStaysUsable) {
  // A fork bomb used to fill the guest's task table until the agent (PID 1) failed to start a
  // thread, threw and died: a guest panic ("Attempted to kill init!"). Now the containers
  // share a pids budget below threads-max and the agent answers EAGAIN instead of dying.
  // The bomb runs beside the container's main process: busybox sh exits (status 2) when a
  // fork fails, which would end the sandbox whether or not the agent survived.
  auto started = nv("run -d --name fault-bomb busybox sh -c "
                    "'(f(){ f | f & }; while :; do f; done) & exec sleep 600'");
  ASSERT_EQ(started.exit_code, 0) << started.output;
  std::this_thread::sleep_for(milliseconds(8000));
  // Exec may be refused while the container's pids are exhausted (EAGAIN); the agent answers.
  auto exec = nv("exec fault-bomb true", milliseconds(90000));
  EXPECT_EQ(exec.output.find("connection closed"), std::string::npos) << exec.output;
  auto s = inspect("fault-bomb");
  EXPECT_EQ(s.value("status", ""), "running") << s.dump();
  const auto console = std::filesystem::path(state()) / "fault-bomb" / "vm" / "console.log";
  EXPECT_EQ(readFile(console).find("Kernel panic"), std::string::npos) << readFile(console);
  auto rm = nv("rm -f fault-bomb");
  EXPECT_EQ(rm.exit_code, 0) << rm.output;
}

TEST_F(FaultE2eTest, RootfsImageVanished_WhileRunning_SandboxRunsOnRmCleansNextRunRebuilds) {
  auto started = nv("run -d --name fault-disk busybox sleep 600");
  ASSERT_EQ(started.exit_code, 0) << started.output;
  const auto rootfs_dir = std::filesystem::path(env().root) / "images" / "rootfs";
  size_t removed = 0;
  for (const auto& e : std::filesystem::directory_iterator(rootfs_dir)) {
    if (e.path().extension() == ".erofs") removed += std::filesystem::remove(e.path()) ? 1u : 0u;
  }
  ASSERT_EQ(removed, 1u);
  // QEMU holds the image open: the guest reads on (files not in its page cache yet too).
  auto exec = nv("exec fault-disk sh -c 'cat /bin/* /etc/* >/dev/null 2>&1; ls /usr/bin | wc -l'");
  EXPECT_EQ(exec.exit_code, 0) << exec.output;
  EXPECT_EQ(inspect("fault-disk").value("status", ""), "running");
  auto rm = nv("rm -f fault-disk");
  EXPECT_EQ(rm.exit_code, 0) << rm.output;
  // The cached image is rebuilt on the next start.
  auto again = nv("run --rm busybox echo rebuilt");
  EXPECT_EQ(again.exit_code, 0) << again.output;
  EXPECT_EQ(again.output, "rebuilt\n");
}

TEST_F(FaultE2eTest, RootfsImageVanished_AtStart_LayerBlobGone_OneLineErrorNothingLeft) {
  // A store of its own: its only layer blob is removed along with the cached image, so the
  // rootfs cannot be rebuilt.
  const std::string images = env().root + "/images-broken";
  auto imported = sh(env().nanovisor + " --image-root " + images + " image import " +
                     std::string(std::getenv("NV_BUILD_DIR")) +
                     "/images/busybox-oci.tar --name busybox");
  ASSERT_EQ(imported.exit_code, 0) << imported.output;
  auto manifest = sh("find " + images + "/rootfs -name '*.erofs' -delete; ls -S " + images +
                     "/blobs/sha256 | head -1");
  ASSERT_EQ(manifest.exit_code, 0);
  std::string layer = manifest.output;
  layer.erase(layer.find_last_not_of('\n') + 1);
  ASSERT_FALSE(layer.empty());
  std::filesystem::remove(images + "/blobs/sha256/" + layer);
  auto r = sh(env().nanovisor + " --state-dir " + state() + " --image-root " + images +
              " run --rm --name fault-noimage busybox true");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(lines(r.output), 1u) << r.output;
  EXPECT_NE(r.output.find("import the image again"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(layer.substr(0, 12)), std::string::npos) << r.output;
  std::filesystem::remove_all(images);
}

// libvirtd as the test found it: running (restarted if a test stopped it) or not.
class LibvirtdGuard {
 public:
  LibvirtdGuard() : was_running_(pid() > 0) {}
  ~LibvirtdGuard() {
    if (was_running_ && pid() <= 0) start();
  }
  static int pid() {
    auto r = sh("pgrep -x libvirtd | head -1");
    return r.exit_code == 0 ? std::atoi(r.output.c_str()) : 0;
  }
  // SIGTERM (what `systemctl restart` sends), then SIGKILL if it does not exit in 30 s.
  static bool stop() {
    const int p = pid();
    if (p <= 0) return true;
    ::kill(p, SIGTERM);
    for (int i = 0; i < 300 && ::kill(p, 0) == 0; ++i) std::this_thread::sleep_for(milliseconds(100));
    if (::kill(p, 0) == 0) ::kill(p, SIGKILL);
    for (int i = 0; i < 50 && ::kill(p, 0) == 0; ++i) std::this_thread::sleep_for(milliseconds(100));
    return ::kill(p, 0) != 0;
  }
  static bool start() {
    if (sh("libvirtd -d").exit_code != 0) return false;
    for (int i = 0; i < 100; ++i) {
      if (sh("virsh -c qemu:///system version >/dev/null 2>&1").exit_code == 0) return true;
      std::this_thread::sleep_for(milliseconds(100));
    }
    return false;
  }
  [[nodiscard]] bool wasRunning() const { return was_running_; }

 private:
  bool was_running_;
};

TEST_F(FaultE2eTest, LibvirtdRestarted_SandboxSurvivesAndRmNeedsLibvirtBack) {
  LibvirtdGuard guard;
  if (!guard.wasRunning()) GTEST_SKIP() << "libvirtd is not running (scripts/host-setup.sh)";
  auto started = nv("--hypervisor libvirt run -d --name fault-lv busybox sleep 600");
  if (started.output.find("not reachable") != std::string::npos) GTEST_SKIP() << started.output;
  ASSERT_EQ(started.exit_code, 0) << started.output;
  const int vmm = inspect("fault-lv").value("vmm_pid", 0);
  ASSERT_GT(vmm, 0);

  // A restart: the domain (not AUTODESTROY) and the sandbox outlive it.
  ASSERT_TRUE(LibvirtdGuard::stop());
  ASSERT_TRUE(LibvirtdGuard::start());
  EXPECT_EQ(::kill(vmm, 0), 0) << "libvirt's QEMU died with libvirtd";
  auto exec = nv("exec fault-lv echo still-here");
  EXPECT_EQ(exec.exit_code, 0) << exec.output;
  EXPECT_EQ(exec.output, "still-here\n");
  EXPECT_EQ(inspect("fault-lv").value("status", ""), "running");
  EXPECT_EQ(sh("virsh -c qemu:///system domstate nanovisor-fault-lv").output, "running\n\n");

  // libvirtd down at rm: one line saying so, the sandbox untouched.
  ASSERT_TRUE(LibvirtdGuard::stop());
  auto refused = nv("rm -f fault-lv");
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_EQ(lines(refused.output), 1u) << refused.output;
  EXPECT_NE(refused.output.find("libvirtd -d"), std::string::npos) << refused.output;
  EXPECT_NE(refused.output.find("rm again"), std::string::npos) << refused.output;
  EXPECT_EQ(inspect("fault-lv").value("status", ""), "running");

  // Back: rm removes the sandbox, its QEMU and libvirt's domain.
  ASSERT_TRUE(LibvirtdGuard::start());
  auto rm = nv("rm -f fault-lv");
  EXPECT_EQ(rm.exit_code, 0) << rm.output;
  for (int i = 0; i < 100 && ::kill(vmm, 0) == 0; ++i) std::this_thread::sleep_for(milliseconds(100));
  EXPECT_NE(::kill(vmm, 0), 0) << "libvirt's QEMU still runs";
  std::string listed;
  for (int i = 0; i < 100; ++i) {
    listed = sh("virsh -c qemu:///system list --all --name").output;
    if (listed.find("nanovisor-fault-lv") == std::string::npos) break;
    std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_EQ(listed.find("nanovisor-fault-lv"), std::string::npos) << listed;
}

TEST_F(FaultE2eTest, LibvirtOwnerKilled_RmDestroysTheDomain) {
  // Without AUTODESTROY the domain outlives a dead owner: rm ends it through libvirt.
  LibvirtdGuard guard;
  if (!guard.wasRunning()) GTEST_SKIP() << "libvirtd is not running (scripts/host-setup.sh)";
  auto started = nv("--hypervisor libvirt run -d --name fault-lvo busybox sleep 600");
  if (started.output.find("not reachable") != std::string::npos) GTEST_SKIP() << started.output;
  ASSERT_EQ(started.exit_code, 0) << started.output;
  const auto s = inspect("fault-lvo");
  const int owner = s.value("owner_pid", 0);
  const int vmm = s.value("vmm_pid", 0);
  ASSERT_GT(owner, 0);
  ASSERT_GT(vmm, 0);
  ::kill(owner, SIGKILL);
  for (int i = 0; i < 50 && ::kill(owner, 0) == 0; ++i) std::this_thread::sleep_for(milliseconds(100));
  auto ps = nv("ps -a");
  EXPECT_NE(ps.output.find("dead"), std::string::npos) << ps.output;
  auto rm = nv("rm fault-lvo");
  EXPECT_EQ(rm.exit_code, 0) << rm.output;
  for (int i = 0; i < 100 && ::kill(vmm, 0) == 0; ++i) std::this_thread::sleep_for(milliseconds(100));
  EXPECT_NE(::kill(vmm, 0), 0) << "libvirt's QEMU still runs";
  EXPECT_EQ(sh("virsh -c qemu:///system list --all --name").output.find("nanovisor-fault-lvo"),
            std::string::npos);
}

}  // namespace
}  // namespace nv
