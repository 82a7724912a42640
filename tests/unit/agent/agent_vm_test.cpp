// SPDX-License-Identifier: Apache-2.0
// The agent as PID 1 of a real guest: QEMU (TCG) boots the project's kernel with the agent's
// initramfs and an erofs rootfs disk; the test talks ttrpc over the virtio-serial port.
// Skipped when QEMU, the kernel or the initramfs tools are missing.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "proto/agent.pb.h"
#include "tests/unit/agent/agent_test_util.h"
#include "tests/unit/agent/ttrpc_test_client.h"

namespace nv::agent {
namespace {

namespace fs = std::filesystem;
namespace pb = ::nanovisor::agent::v1;
using testing::TtrpcTestClient;

// Runs a shell command; returns its stdout's last line, or "" when it fails.
std::string lastLineOf(const std::string& command) {
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(::popen(command.c_str(), "r"), ::pclose);
  if (!pipe) {
    return {};
  }
  std::string out;
  std::array<char, 4096> buf{};
  while (std::fgets(buf.data(), buf.size(), pipe.get()) != nullptr) {
    out = buf.data();
  }
  if (::pclose(pipe.release()) != 0) {
    return {};
  }
  while (!out.empty() && out.back() == '\n') {
    out.pop_back();
  }
  return out;
}

class AgentVmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* src = std::getenv("NV_SOURCE_DIR");
    const char* build = std::getenv("NV_BUILD_DIR");
    if (src == nullptr || build == nullptr) {
      GTEST_SKIP() << "run through ctest (NV_SOURCE_DIR/NV_BUILD_DIR unset)";
    }
    if (lastLineOf("command -v qemu-system-x86_64").empty() ||
        lastLineOf("command -v mkfs.erofs").empty()) {
      GTEST_SKIP() << "needs qemu-system-x86_64 and mkfs.erofs";
    }
    kernel_dir_ = lastLineOf(std::string(src) + "/guest-kernel/build.sh --dir 2>/dev/null");
    if (kernel_dir_.empty()) {
      GTEST_SKIP() << "guest kernel not built (guest-kernel/build.sh)";
    }
    initramfs_ = lastLineOf(std::string(src) + "/agent/initramfs.sh " + build);
    ASSERT_FALSE(initramfs_.empty()) << "agent/initramfs.sh failed";
    char tmpl[] = "/tmp/nv-agent-vm.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    testing::buildRootfs(dir_ + "/rootfs");
    ASSERT_FALSE(lastLineOf("mkfs.erofs --quiet " + dir_ + "/rootfs.erofs " + dir_ +
                            "/rootfs >/dev/null && echo ok")
                     .empty());
    socket_ = dir_ + "/agent.sock";
    pid_ = ::fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      std::string kernel = kernel_dir_ + "/vmlinux";
      std::string drive = "file=" + dir_ + "/rootfs.erofs,if=none,id=d0,format=raw,readonly=on";
      std::string chardev = "socket,id=agent,path=" + socket_ + ",server=on,wait=off";
      std::string log = dir_ + "/console.log";
      std::freopen(log.c_str(), "w", stdout);
      ::execlp("qemu-system-x86_64", "qemu-system-x86_64", "-M",
               "microvm,x-option-roms=off,rtc=off,acpi=off", "-accel", "tcg", "-cpu", "max",
               "-m", "256", "-nographic", "-no-reboot", "-nodefaults", "-serial", "stdio",
               "-kernel", kernel.c_str(), "-initrd", initramfs_.c_str(), "-append",
               "console=ttyS0 panic=-1 reboot=t quiet", "-drive", drive.c_str(), "-device",
               "virtio-blk-device,drive=d0,serial=nv-rootfs", "-device", "virtio-serial-device",
               "-chardev", chardev.c_str(), "-device",
               "virtserialport,chardev=agent,name=io.nanovisor.agent",
               static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int i = 0; i < 500 && ::access(socket_.c_str(), F_OK) != 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  void TearDown() override {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (!dir_.empty()) {
      std::error_code ec;
      fs::remove_all(dir_, ec);
    }
  }

  pb::CreateContainerRequest createRequest(const std::string& id, const nlohmann::json& spec) {
    pb::CreateContainerRequest req;
    req.set_container_id(id);
    req.set_oci_spec_json(spec.dump());
    auto* layer = req.mutable_rootfs()->add_layers();
    layer->set_serial("nv-rootfs");
    layer->set_fstype("erofs");
    layer->set_readonly(true);
    return req;
  }

  static std::string drain(TtrpcTestClient& c, const std::string& id) {
    std::string out;
    while (true) {
      pb::ReadStreamRequest req;
      req.set_container_id(id);
      pb::ReadStreamResponse resp;
      if (!c.call("ReadStdout", req, &resp).ok() || resp.eof()) {
        return out;
      }
      out += resp.data();
    }
  }

  std::string console() {
    std::ifstream in(dir_ + "/console.log");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  std::string kernel_dir_;
  std::string initramfs_;
  std::string dir_;
  std::string socket_;
  pid_t pid_ = -1;
};

TEST_F(AgentVmTest, Guest_RunsContainersWithLimits) {
  auto c = TtrpcTestClient::connectRetrying(socket_);
  ASSERT_TRUE(c.valid()) << "no QEMU chardev listening on " << socket_;
  c.setTimeout(120);
  pb::HealthResponse health;
  auto status = c.call("Health", pb::HealthRequest(), &health);
  ASSERT_TRUE(status.ok()) << status.message << "\nconsole:\n" << console();
  pb::CreateSandboxRequest sandbox;
  sandbox.set_hostname("vmbox");
  sandbox.mutable_policy()->set_exec_allowed(true);
  pb::CreateSandboxResponse sandboxed;
  ASSERT_TRUE(c.call("CreateSandbox", sandbox, &sandboxed).ok());

  // The workload runs on the guest's kernel.
  pb::CreateContainerResponse created;
  status = c.call("CreateContainer", createRequest("c1", testing::baseSpec({"uname", "-r"})),
                  &created);
  ASSERT_TRUE(status.ok()) << status.message << "\nconsole:\n" << console();
  pb::StartContainerRequest start;
  start.set_container_id("c1");
  pb::StartContainerResponse started;
  status = c.call("StartContainer", start, &started);
  ASSERT_TRUE(status.ok()) << status.message;
  std::string release = drain(c, "c1");
  EXPECT_NE(release.find("-nanovisor"), std::string::npos) << release;

  // A memory limit is enforced by the guest's cgroup v2 and reported as an OOM event.
  auto spec = testing::baseSpec({"dd", "if=/dev/zero", "of=/dev/null", "bs=200M", "count=1"});
  spec["linux"]["resources"] = {{"memory", {{"limit", 32 << 20}}}};
  status = c.call("CreateContainer", createRequest("oom", spec), &created);
  ASSERT_TRUE(status.ok()) << status.message;
  start.set_container_id("oom");
  ASSERT_TRUE(c.call("StartContainer", start, &started).ok());
  pb::WaitProcessRequest wait;
  wait.set_container_id("oom");
  pb::WaitProcessResponse exited;
  ASSERT_TRUE(c.call("WaitProcess", wait, &exited).ok());
  EXPECT_EQ(exited.exit_status(), 137);
  EXPECT_TRUE(exited.oom_killed());
  pb::GetOOMEventResponse oom;
  ASSERT_TRUE(c.call("GetOOMEvent", pb::GetOOMEventRequest(), &oom).ok());
  EXPECT_EQ(oom.container_id(), "oom");
  pb::StatsRequest stats_req;
  stats_req.set_container_id("oom");
  pb::StatsResponse stats;
  ASSERT_TRUE(c.call("Stats", stats_req, &stats).ok());
  EXPECT_EQ(stats.memory().limit_bytes(), 32u << 20);
  EXPECT_GE(stats.memory().oom_kills(), 1u);

  // The host reconnects (a new CLI process): the agent serves the new session, same state.
  c = TtrpcTestClient(socket_);
  ASSERT_TRUE(c.valid());
  c.setTimeout(60);
  wait.set_container_id("c1");
  status = c.call("WaitProcess", wait, &exited);
  ASSERT_TRUE(status.ok()) << status.message;
  EXPECT_EQ(exited.exit_status(), 0);
}

}  // namespace
}  // namespace nv::agent
