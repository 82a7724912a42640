// SPDX-License-Identifier: Apache-2.0
// The real nanovisor-agent binary in host mode, in fresh mount+pid namespaces, driven over
// its ttrpc socket: container lifecycle, streams, exit codes, exec, users and limits.
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include "proto/agent.pb.h"
#include "tests/unit/agent/agent_test_util.h"
#include "tests/unit/agent/ttrpc_test_client.h"

namespace nv::agent {
namespace {

namespace fs = std::filesystem;
namespace pb = ::nanovisor::agent::v1;
using testing::TtrpcTestClient;

using testing::kBusybox;

std::string agentBinary() {
  const char* build = std::getenv("NV_BUILD_DIR");
  return std::string(build != nullptr ? build : ".") + "/bin/nanovisor-agent";
}

std::string md5Hex(const std::string& data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), digest, &len, EVP_md5(), nullptr);
  std::string out;
  char buf[3];
  for (unsigned i = 0; i < len; ++i) {
    std::snprintf(buf, sizeof(buf), "%02x", digest[i]);
    out += buf;
  }
  return out;
}

class AgentHostTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "needs root (mount, namespaces)";
    }
    if (::access(kBusybox, X_OK) != 0) {
      GTEST_SKIP() << "needs " << kBusybox << " (busybox-static)";
    }
    if (::access(agentBinary().c_str(), X_OK) != 0) {
      GTEST_SKIP() << "agent binary not built: " << agentBinary();
    }
    char tmpl[] = "/tmp/nv-agent-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    testing::buildRootfs(dir_ + "/image");
    socket_ = dir_ + "/agent.sock";
    pid_ = ::fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      // unshare(1): new mount + pid namespaces, the agent is PID 1 there; when this process
      // dies the agent gets SIGKILL (--kill-child), taking every container with it.
      std::string state = dir_ + "/state";
      std::string listen = "unix:" + socket_;
      std::string bin = agentBinary();
      ::execlp("unshare", "unshare", "--mount", "--pid", "--fork", "--kill-child",
               "--propagation", "private", "--mount-proc", bin.c_str(), "--listen", listen.c_str(),
               "--state-dir", state.c_str(), "--cgroup-root", "/nonexistent", "--log-level",
               "warn", static_cast<char*>(nullptr));
      _exit(127);
    }
    // The socket file appears at bind(), before listen(): wait until a connection succeeds.
    ASSERT_TRUE(TtrpcTestClient::connectRetrying(socket_, 5000).valid())
        << "agent did not start listening on " << socket_;
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

  TtrpcTestClient client() { return TtrpcTestClient(socket_); }

  pb::CreateContainerRequest createRequest(const std::string& id, const nlohmann::json& spec) {
    pb::CreateContainerRequest req;
    req.set_container_id(id);
    req.set_oci_spec_json(spec.dump());
    auto* layer = req.mutable_rootfs()->add_layers();
    layer->set_path(dir_ + "/image");
    layer->set_readonly(true);
    req.mutable_rootfs()->mutable_writable()->set_tmpfs_size_bytes(64 << 20);
    return req;
  }

  // Creates and starts a container; fails the test on an error.
  void run(TtrpcTestClient& c, const std::string& id, const nlohmann::json& spec) {
    run(c, createRequest(id, spec));
  }
  void run(TtrpcTestClient& c, const pb::CreateContainerRequest& request) {
    pb::CreateContainerResponse created;
    auto status = c.call("CreateContainer", request, &created);
    ASSERT_TRUE(status.ok()) << status.message;
    pb::StartContainerRequest start;
    start.set_container_id(request.container_id());
    pb::StartContainerResponse started;
    status = c.call("StartContainer", start, &started);
    ASSERT_TRUE(status.ok()) << status.message;
  }

  // Reads a stream to EOF.
  static std::string drain(TtrpcTestClient& c, const std::string& id, const std::string& exec_id,
                           const char* method = "ReadStdout") {
    std::string out;
    while (true) {
      pb::ReadStreamRequest req;
      req.set_container_id(id);
      req.set_exec_id(exec_id);
      pb::ReadStreamResponse resp;
      auto status = c.call(method, req, &resp);
      if (!status.ok() || resp.eof()) {
        return out;
      }
      out += resp.data();
    }
  }

  static pb::WaitProcessResponse wait(TtrpcTestClient& c, const std::string& id,
                                      const std::string& exec_id = "") {
    pb::WaitProcessRequest req;
    req.set_container_id(id);
    req.set_exec_id(exec_id);
    pb::WaitProcessResponse resp;
    auto status = c.call("WaitProcess", req, &resp);
    EXPECT_TRUE(status.ok()) << status.message;
    return resp;
  }

  static testing::CallStatus removeContainer(TtrpcTestClient& c, const std::string& id) {
    pb::RemoveContainerRequest req;
    req.set_container_id(id);
    req.set_force(true);
    pb::RemoveContainerResponse resp;
    return c.call("RemoveContainer", req, &resp);
  }

  std::string dir_;
  std::string socket_;
  pid_t pid_ = -1;
};

TEST_F(AgentHostTest, Health_Version_ReportKernel) {
  auto c = client();
  ASSERT_TRUE(c.valid());
  pb::HealthResponse health;
  ASSERT_TRUE(c.call("Health", pb::HealthRequest(), &health).ok());
  EXPECT_TRUE(health.ok());
  pb::VersionResponse version;
  ASSERT_TRUE(c.call("Version", pb::VersionRequest(), &version).ok());
  EXPECT_FALSE(version.agent_version().empty());
  EXPECT_FALSE(version.kernel_release().empty());
}

TEST_F(AgentHostTest, EchoHello_PrintsHelloAndExitsZero) {
  auto c = client();
  run(c, "c1", testing::baseSpec({"echo", "hello"}));
  EXPECT_EQ(drain(c, "c1", ""), "hello\n");
  auto exit = wait(c, "c1");
  EXPECT_EQ(exit.exit_status(), 0);
  EXPECT_GT(exit.exited_at_unix_nanos(), 0);
  EXPECT_TRUE(removeContainer(c, "c1").ok());
}

TEST_F(AgentHostTest, ExitSeven_ReportsSeven) {
  auto c = client();
  run(c, "c1", testing::baseSpec({"sh", "-c", "echo oops >&2; exit 7"}));
  EXPECT_EQ(drain(c, "c1", "", "ReadStderr"), "oops\n");
  EXPECT_EQ(wait(c, "c1").exit_status(), 7);
}

TEST_F(AgentHostTest, SignalKill_Reports137) {
  auto c = client();
  run(c, "c1", testing::baseSpec({"sleep", "1000"}));
  pb::SignalProcessRequest sig;
  sig.set_container_id("c1");
  sig.set_signal(SIGKILL);
  pb::SignalProcessResponse resp;
  ASSERT_TRUE(c.call("SignalProcess", sig, &resp).ok());
  EXPECT_EQ(wait(c, "c1").exit_status(), 137);
}

TEST_F(AgentHostTest, Stdin_CatEchoesItBack) {
  auto c = client();
  run(c, "c1", testing::baseSpec({"cat"}));
  pb::WriteStdinRequest w;
  w.set_container_id("c1");
  w.set_data("piped input\n");
  pb::WriteStdinResponse written;
  ASSERT_TRUE(c.call("WriteStdin", w, &written).ok());
  EXPECT_EQ(written.bytes_written(), 12u);
  pb::CloseStdinRequest close;
  close.set_container_id("c1");
  pb::CloseStdinResponse closed;
  ASSERT_TRUE(c.call("CloseStdin", close, &closed).ok());
  EXPECT_EQ(drain(c, "c1", ""), "piped input\n");
  EXPECT_EQ(wait(c, "c1").exit_status(), 0);
}

TEST_F(AgentHostTest, TenMebibytesOfStdout_ArriveIntact) {
  auto c = client();
  // The container reports the checksum of what it writes on stderr.
  run(c, "c1", testing::baseSpec({"sh", "-c",
                         "dd if=/dev/urandom of=/tmp/f bs=1048576 count=10 2>/dev/null && "
                         "md5sum /tmp/f >&2 && cat /tmp/f"}));
  std::string out = drain(c, "c1", "");
  std::string err = drain(c, "c1", "", "ReadStderr");
  EXPECT_EQ(out.size(), 10u * 1024 * 1024);
  ASSERT_GE(err.size(), 32u);
  EXPECT_EQ(md5Hex(out), err.substr(0, 32));
  EXPECT_EQ(wait(c, "c1").exit_status(), 0);
}

TEST_F(AgentHostTest, EnvCwdUser_AreApplied) {
  auto spec = testing::baseSpec({"sh", "-c", "echo $FOO; pwd; id -u; id -g; id -G; echo $HOME; hostname"});
  spec["process"]["env"].push_back("FOO=bar");
  spec["process"]["cwd"] = "/tmp";
  spec["process"]["user"] = {{"uid", 0}, {"gid", 0}, {"username", "alice"}};
  auto c = client();
  run(c, "c1", spec);
  EXPECT_EQ(drain(c, "c1", ""), "bar\n/tmp\n1000\n1000\n1000 50\n/home/alice\ntestbox\n");
  EXPECT_EQ(wait(c, "c1").exit_status(), 0);
}

TEST_F(AgentHostTest, Exec_SeesTheContainersPidNamespace) {
  auto c = client();
  run(c, "c1", testing::baseSpec({"sleep", "1000"}));
  pb::ExecProcessRequest exec;
  exec.set_container_id("c1");
  exec.set_exec_id("e1");
  exec.set_oci_process_json(
      nlohmann::json({{"args", {"sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $$"}},
                      {"env", {"PATH=/bin"}},
                      {"cwd", "/"}})
          .dump());
  pb::ExecProcessResponse execd;
  auto status = c.call("ExecProcess", exec, &execd);
  ASSERT_TRUE(status.ok()) << status.message;
  std::string out = drain(c, "c1", "e1");
  EXPECT_EQ(wait(c, "c1", "e1").exit_status(), 0);
  // PID 1 of the exec's namespace is the container's sleep; the exec itself is a small pid.
  EXPECT_EQ(out.substr(0, out.find('\n')), "sleep 1000 ");
  EXPECT_LT(std::stoi(out.substr(out.find('\n') + 1)), 100);
  pb::ListProcessesRequest list;
  list.set_container_id("c1");
  pb::ListProcessesResponse pids;
  ASSERT_TRUE(c.call("ListProcesses", list, &pids).ok());
  EXPECT_GE(pids.pids_size(), 1);
  EXPECT_TRUE(removeContainer(c, "c1").ok());
}

// A long-lived container exec'd again and again (Kubernetes exec probes): execs whose clients
// waited for them and read their output are forgotten at the cap of 1024, so the 1100th still
// runs; one never waited for is kept for its client.
TEST_F(AgentHostTest, ManyCollectedExecs_DoNotExhaustTheContainer) {
  auto c = client();
  run(c, "c1", testing::baseSpec({"sleep", "1000"}));
  pb::ExecProcessRequest exec;
  exec.set_container_id("c1");
  exec.set_oci_process_json(
      nlohmann::json({{"args", {"true"}}, {"env", {"PATH=/bin"}}, {"cwd", "/"}}).dump());
  pb::ExecProcessResponse execd;
  exec.set_exec_id("kept");
  ASSERT_TRUE(c.call("ExecProcess", exec, &execd).ok());
  for (int i = 0; i < 1100; ++i) {
    exec.set_exec_id("probe" + std::to_string(i));
    auto status = c.call("ExecProcess", exec, &execd);
    ASSERT_TRUE(status.ok()) << "exec " << i << ": " << status.message;
    EXPECT_EQ(drain(c, "c1", exec.exec_id()), "");
    EXPECT_EQ(drain(c, "c1", exec.exec_id(), "ReadStderr"), "");
    ASSERT_EQ(wait(c, "c1", exec.exec_id()).exit_status(), 0);
  }
  EXPECT_EQ(wait(c, "c1", "kept").exit_status(), 0) << "an exec not yet waited for was dropped";
  EXPECT_TRUE(removeContainer(c, "c1").ok());
}

TEST_F(AgentHostTest, PodContainer_JoinsTheSandboxsPidIpcUtsNamespaces) {
  // CRI's container spec names the sandbox's namespaces by host path; in the guest the agent
  // joins the sandbox container's namespaces of those types, keeping its own mount namespace.
  auto c = client();
  // ... and /dev/shm: CRI shares it with the IPC namespace.
  const nlohmann::json shm = {{"destination", "/dev/shm"}, {"type", "tmpfs"}, {"source", "shm"},
                              {"options", {"nosuid", "noexec", "nodev", "mode=1777"}}};
  auto sandbox = testing::baseSpec({"sh", "-c", "echo from-sb > /dev/shm/mark; exec sleep 1000"});
  sandbox["hostname"] = "pod-host";
  sandbox["mounts"].push_back(shm);
  run(c, "sb", sandbox);
  auto member = testing::baseSpec(
      {"sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; echo; hostname; readlink /proc/self/ns/ipc; "
                   "for i in $(seq 50); do [ -e /dev/shm/mark ] && break; sleep 0.1; done; "
                   "cat /dev/shm/mark"});
  member["hostname"] = "";
  member["mounts"].push_back(shm);
  member["linux"]["namespaces"] = {{{"type", "pid"}, {"path", "/proc/4242/ns/pid"}},
                                   {{"type", "ipc"}, {"path", "/proc/4242/ns/ipc"}},
                                   {{"type", "uts"}, {"path", "/proc/4242/ns/uts"}},
                                   {{"type", "network"}, {"path", "/var/run/netns/cni-x"}},
                                   {{"type", "mount"}}};
  auto request = createRequest("c1", member);

  // Without the pod's sandbox the paths cannot be honoured: a clear error, nothing created.
  pb::CreateContainerResponse created;
  auto refused = c.call("CreateContainer", request, &created);
  EXPECT_EQ(refused.code, 3) << refused.message;
  EXPECT_NE(refused.message.find("sandbox_container_id"), std::string::npos) << refused.message;
  request.set_sandbox_container_id("nosuch");
  EXPECT_EQ(c.call("CreateContainer", request, &created).code, 5);

  request.set_sandbox_container_id("sb");
  auto status = c.call("CreateContainer", request, &created);
  ASSERT_TRUE(status.ok()) << status.message;
  pb::StartContainerRequest start;
  start.set_container_id("c1");
  pb::StartContainerResponse started;
  ASSERT_TRUE(c.call("StartContainer", start, &started).ok());
  std::string out = drain(c, "c1", "");
  EXPECT_EQ(wait(c, "c1").exit_status(), 0);
  // PID 1 of the member's pid namespace is the sandbox's sleep; hostname and IPC are the pod's.
  pb::ExecProcessRequest exec;
  exec.set_container_id("sb");
  exec.set_exec_id("ipc");
  exec.set_oci_process_json(
      nlohmann::json({{"args", {"readlink", "/proc/self/ns/ipc"}}, {"env", {"PATH=/bin"}}, {"cwd", "/"}})
          .dump());
  pb::ExecProcessResponse execd;
  ASSERT_TRUE(c.call("ExecProcess", exec, &execd).ok());
  const std::string sandbox_ipc = drain(c, "sb", "ipc");
  EXPECT_EQ(out, "sleep 1000 \npod-host\n" + sandbox_ipc + "from-sb\n");
  EXPECT_TRUE(removeContainer(c, "c1").ok());
  EXPECT_TRUE(removeContainer(c, "sb").ok());
}

TEST_F(AgentHostTest, Files_AreCopiesBoundAtTheirDestinations) {
  auto c = client();
  auto request = createRequest(
      "c1", testing::baseSpec({"sh", "-c", "cat /etc/hosts /etc/app.conf; "
                                           "echo x >> /etc/hosts 2>/dev/null || echo hosts-ro; "
                                           "echo more >> /etc/app.conf && cat /etc/app.conf"}));
  auto* hosts = request.add_files();
  hosts->set_destination("/etc/hosts");
  hosts->set_data("10.0.0.7 pod-a\n");
  hosts->set_readonly(true);
  auto* conf = request.add_files();
  conf->set_destination("/etc/app.conf");  // no such file in the image: created
  conf->set_data("key=1\n");
  run(c, request);
  EXPECT_EQ(drain(c, "c1", ""), "10.0.0.7 pod-a\nkey=1\nhosts-ro\nkey=1\nmore\n");
  EXPECT_EQ(wait(c, "c1").exit_status(), 0);
  EXPECT_TRUE(removeContainer(c, "c1").ok());

  pb::CreateContainerResponse created;
  for (const char* bad : {"etc/hosts", "/", "/etc/../hosts", "/etc//hosts", "/etc/"}) {
    auto refused = createRequest("c2", testing::baseSpec({"true"}));
    refused.add_files()->set_destination(bad);
    EXPECT_EQ(c.call("CreateContainer", refused, &created).code, 3) << bad;
  }
  auto big = createRequest("c2", testing::baseSpec({"true"}));
  auto* file = big.add_files();
  file->set_destination("/big");
  file->set_data(std::string((64 << 10) + 1, 'x'));
  EXPECT_NE(c.call("CreateContainer", big, &created).code, 0);
  EXPECT_FALSE(fs::exists(dir_ + "/state/c2"));
}

TEST_F(AgentHostTest, SecretVolumes_AreReadOnlyTmpfsFilesOwnedByTheUser) {
  auto c = client();
  auto spec = testing::baseSpec(
      {"sh", "-c", "cat /etc/creds/password /etc/creds/tls/key; "
                   "stat -c '%a %u:%g' /etc/creds/password /etc/creds/tls/key /etc/creds/tls; "
                   "touch /etc/creds/x 2>/dev/null || echo ro; "
                   "grep ' /etc/creds ' /proc/mounts | cut -d' ' -f3"});
  spec["process"]["user"] = {{"uid", 0}, {"gid", 0}, {"username", "alice"}};
  auto request = createRequest("c1", spec);
  auto* volume = request.add_secret_volumes();
  volume->set_destination("/etc/creds");  // no such directory in the image: created
  auto* password = volume->add_files();
  password->set_name("password");
  password->set_data("hunter2\n");
  password->set_mode(0644);  // kubelet's defaultMode: only the read bits are kept
  auto* key = volume->add_files();
  key->set_name("tls/key");
  key->set_data("KEY\n");
  run(c, request);
  EXPECT_EQ(drain(c, "c1", ""),
            "hunter2\nKEY\n444 1000:1000\n400 1000:1000\n500 1000:1000\nro\ntmpfs\n");
  EXPECT_EQ(wait(c, "c1").exit_status(), 0);
  EXPECT_TRUE(removeContainer(c, "c1").ok());

  pb::CreateContainerResponse created;
  for (auto [destination, name] : {std::pair{"etc/creds", "a"}, {"/etc/creds", "../a"},
                                   {"/etc/creds", "/a"}, {"/", "a"}}) {
    auto refused = createRequest("c2", testing::baseSpec({"true"}));
    auto* bad = refused.add_secret_volumes();
    bad->set_destination(destination);
    bad->add_files()->set_name(name);
    EXPECT_EQ(c.call("CreateContainer", refused, &created).code, 3) << destination << " " << name;
  }
  EXPECT_FALSE(fs::exists(dir_ + "/state/c2"));
}

TEST_F(AgentHostTest, MissingBinary_FailsWithClearError) {
  auto c = client();
  pb::CreateContainerResponse created;
  auto status = c.call("CreateContainer", createRequest("c1", testing::baseSpec({"nosuchcmd"})), &created);
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message.find("nosuchcmd"), std::string::npos) << status.message;
  EXPECT_FALSE(fs::exists(dir_ + "/state/c1"));
}

TEST_F(AgentHostTest, BadSpecJson_IsInvalidArgument) {
  auto c = client();
  pb::CreateContainerRequest req = createRequest("c1", testing::baseSpec({"true"}));
  req.set_oci_spec_json("{not json");
  pb::CreateContainerResponse resp;
  auto status = c.call("CreateContainer", req, &resp);
  EXPECT_EQ(status.code, 3);
  EXPECT_NE(status.message.find("not valid JSON"), std::string::npos) << status.message;
}

TEST_F(AgentHostTest, UnknownContainer_IsNotFound) {
  auto c = client();
  pb::WaitProcessRequest req;
  req.set_container_id("nope");
  pb::WaitProcessResponse resp;
  EXPECT_EQ(c.call("WaitProcess", req, &resp).code, 5);
}

TEST_F(AgentHostTest, UnknownMethod_IsUnimplemented) {
  auto c = client();
  pb::HealthResponse resp;
  EXPECT_EQ(c.call("NoSuchMethod", pb::HealthRequest(), &resp).code, 12);
}

TEST_F(AgentHostTest, ReadOnlyRoot_RefusesWrites) {
  auto spec = testing::baseSpec({"sh", "-c", "touch /x 2>/dev/null && echo wrote || echo refused"});
  spec["root"]["readonly"] = true;
  auto c = client();
  run(c, "c1", spec);
  EXPECT_EQ(drain(c, "c1", ""), "refused\n");
}

TEST_F(AgentHostTest, Remove_UnmountsEverything) {
  auto c = client();
  run(c, "c1", testing::baseSpec({"true"}));
  EXPECT_EQ(wait(c, "c1").exit_status(), 0);
  ASSERT_TRUE(removeContainer(c, "c1").ok());
  EXPECT_FALSE(fs::exists(dir_ + "/state/c1"));
}

TEST_F(AgentHostTest, Terminal_IsAPtyAndResizes) {
  auto spec = testing::baseSpec({"sh", "-c", "[ -t 0 ] && [ -t 1 ] && echo isatty; tty; sleep 0.3; stty size"});
  spec["process"]["terminal"] = true;
  spec["process"]["consoleSize"] = {{"height", 10}, {"width", 20}};
  auto c = client();
  run(c, "c1", spec);
  pb::TtyWinResizeRequest resize;
  resize.set_container_id("c1");
  resize.set_rows(33);
  resize.set_columns(99);
  pb::TtyWinResizeResponse resized;
  ASSERT_TRUE(c.call("TtyWinResize", resize, &resized).ok());
  std::string out = drain(c, "c1", "");
  EXPECT_NE(out.find("isatty"), std::string::npos) << out;
  EXPECT_NE(out.find("/dev/pts/0"), std::string::npos) << out;  // its own devpts
  EXPECT_NE(out.find("33 99"), std::string::npos) << out;
  EXPECT_EQ(wait(c, "c1").exit_status(), 0);
}

TEST_F(AgentHostTest, ExecWithTty_GetsATerminalInTheContainer) {
  auto c = client();
  run(c, "c1", testing::baseSpec({"sleep", "1000"}));
  pb::ExecProcessRequest exec;
  exec.set_container_id("c1");
  exec.set_exec_id("shell");
  exec.set_tty(true);
  exec.set_oci_process_json(R"({"args":["sh","-c","tty; read line; echo got:$line"]})");
  pb::ExecProcessResponse execd;
  auto status = c.call("ExecProcess", exec, &execd);
  ASSERT_TRUE(status.ok()) << status.message;
  pb::WriteStdinRequest w;
  w.set_container_id("c1");
  w.set_exec_id("shell");
  w.set_data("typed\n");
  pb::WriteStdinResponse written;
  ASSERT_TRUE(c.call("WriteStdin", w, &written).ok());
  std::string out = drain(c, "c1", "shell");
  EXPECT_NE(out.find("/dev/pts/"), std::string::npos) << out;
  EXPECT_NE(out.find("got:typed"), std::string::npos) << out;
  EXPECT_EQ(wait(c, "c1", "shell").exit_status(), 0);
}

TEST_F(AgentHostTest, VolumesAndDns_AreMountedReadOnly) {
  fs::create_directories(dir_ + "/vol");
  std::ofstream(dir_ + "/vol/f") << "from host\n";
  auto c = client();
  pb::CreateSandboxRequest sandbox;
  sandbox.add_dns("192.0.2.53");
  pb::CreateSandboxResponse sandboxed;
  ASSERT_TRUE(c.call("CreateSandbox", sandbox, &sandboxed).ok());
  auto req = createRequest("c1", testing::baseSpec(
      {"sh", "-c", "cat /data/f; touch /data/x 2>/dev/null && echo wrote || echo ro; "
                   "cat /etc/resolv.conf"}));
  auto* volume = req.add_volumes();
  volume->mutable_device()->set_path(dir_ + "/vol");
  volume->set_destination("/data");
  volume->set_readonly(true);
  pb::CreateContainerResponse created;
  auto status = c.call("CreateContainer", req, &created);
  ASSERT_TRUE(status.ok()) << status.message;
  pb::StartContainerRequest start;
  start.set_container_id("c1");
  pb::StartContainerResponse started;
  ASSERT_TRUE(c.call("StartContainer", start, &started).ok());
  EXPECT_EQ(drain(c, "c1", ""), "from host\nro\nnameserver 192.0.2.53\n");
}

TEST_F(AgentHostTest, ShareVolumeWithBadTag_IsRefusedNamingTheTag) {
  auto c = client();
  auto req = createRequest("c1", testing::baseSpec({"true"}));
  auto* volume = req.add_volumes();
  volume->set_share_tag("../etc");
  volume->set_destination("/data");
  pb::CreateContainerResponse created;
  auto status = c.call("CreateContainer", req, &created);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message.find("share tag \"../etc\" is not 1-31 of [A-Za-z0-9_-]"),
            std::string::npos)
      << status.message;
}

TEST_F(AgentHostTest, SeccompProfile_IsAppliedToTheWorkload) {
  auto spec = testing::baseSpec({"sh", "-c", "mkdir /tmp/d 2>/dev/null && echo made || echo denied"});
  spec["linux"]["seccomp"] = {
      {"defaultAction", "SCMP_ACT_ALLOW"},
      {"syscalls", {{{"names", {"mkdir", "mkdirat"}}, {"action", "SCMP_ACT_ERRNO"}}}}};
  auto c = client();
  run(c, "c1", spec);
  EXPECT_EQ(drain(c, "c1", ""), "denied\n");
}

TEST_F(AgentHostTest, Capabilities_AreDroppedToTheSpecsSets) {
  // Without CAP_CHOWN root cannot chown a file it does not own... to someone else.
  auto spec = testing::baseSpec(
      {"sh", "-c", "touch /tmp/f && chown 1000 /tmp/f 2>/dev/null && echo chowned || echo denied; "
                   "grep CapBnd /proc/self/status"});
  spec["process"]["capabilities"] = {{"bounding", {"CAP_KILL"}},
                                     {"effective", {"CAP_KILL"}},
                                     {"permitted", {"CAP_KILL"}}};
  auto c = client();
  run(c, "c1", spec);
  EXPECT_EQ(drain(c, "c1", ""), "denied\nCapBnd:\t0000000000000020\n");
}

TEST_F(AgentHostTest, ExecPolicy_CanForbidExec) {
  auto c = client();
  pb::CreateSandboxRequest sandbox;
  sandbox.mutable_policy()->set_exec_allowed(false);
  pb::CreateSandboxResponse sandboxed;
  ASSERT_TRUE(c.call("CreateSandbox", sandbox, &sandboxed).ok());
  run(c, "c1", testing::baseSpec({"sleep", "1000"}));
  pb::ExecProcessRequest exec;
  exec.set_container_id("c1");
  exec.set_exec_id("e1");
  exec.set_oci_process_json(R"({"args":["true"]})");
  pb::ExecProcessResponse execd;
  EXPECT_EQ(c.call("ExecProcess", exec, &execd).code, 7);
}

TEST_F(AgentHostTest, SlowReader_BackPressuresTheWriter) {
  // The workload writes 8 MiB; with nobody reading, the agent buffers at most 1 MiB per
  // stream plus the pipe, so the process must still be running after a while.
  auto c = client();
  run(c, "c1", testing::baseSpec({"dd", "if=/dev/zero", "bs=1048576", "count=8"}));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  pb::ListProcessesRequest list;
  list.set_container_id("c1");
  pb::ListProcessesResponse pids;
  ASSERT_TRUE(c.call("ListProcesses", list, &pids).ok());
  EXPECT_EQ(pids.pids_size(), 1);
  EXPECT_EQ(drain(c, "c1", "").size(), 8u << 20);
  EXPECT_EQ(wait(c, "c1").exit_status(), 0);
}

TEST_F(AgentHostTest, DuplicateId_IsAlreadyExists) {
  auto c = client();
  run(c, "c1", testing::baseSpec({"sleep", "1000"}));
  pb::CreateContainerResponse created;
  EXPECT_EQ(c.call("CreateContainer", createRequest("c1", testing::baseSpec({"true"})), &created).code, 6);
  EXPECT_EQ(c.call("CreateContainer", createRequest("../x", testing::baseSpec({"true"})), &created).code, 3);
}

}  // namespace
}  // namespace nv::agent
