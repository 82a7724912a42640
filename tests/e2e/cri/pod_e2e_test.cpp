// SPDX-License-Identifier: Apache-2.0
// A Kubernetes-style pod through containerd's CRI plugin, driven by our own CRI v1 client over
// gRPC, the way kubelet drives it: RunPodSandbox, two containers sharing the pod's PID and IPC
// namespaces, ExecSync, ContainerStatus, ContainerStats, StopContainer, StopPodSandbox,
// RemovePodSandbox. The pod runs under `runc` (the reference: it proves the client and the
// private containerd) and under `nanovisor`, where the whole pod is one VM.
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <vector>

#include <gtest/gtest.h>

#include "cri_api.grpc.pb.h"
#include "tests/support/nanovisor_env.h"
#include "tests/support/private_containerd.h"

namespace nv {
namespace {

namespace cri = runtime::v1;
using Stub = cri::RuntimeService::Stub;

// The CRI config of the private containerd: runc (the default) and nanovisor handlers, our
// pause image as the sandbox image. restrict_oom_score_adj: the CI machines deny lowering
// oom_score_adj (no CAP_SYS_RESOURCE), which CRI's -998 for sandboxes would need.
constexpr const char* kCriConfig = R"(
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "docker.io/nanovisor/pause:1"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nanovisor]
      runtime_type = "io.containerd.nanovisor.v2"
      privileged_without_host_devices = true
)";

// A small CRI v1 client: one call per RPC with a deadline; a failed call is an nv::Error
// naming the RPC and carrying gRPC's message.
class CriClient {
 public:
  explicit CriClient(const std::string& socket)
      : stub_(cri::RuntimeService::NewStub(
            grpc::CreateChannel("unix://" + socket, grpc::InsecureChannelCredentials()))) {}

  template <class Req, class Resp>
  Result<Resp> call(grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
                    const char* name, const Req& request, int timeout_s = 180) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(timeout_s));
    Resp response;
    const grpc::Status status = (stub_.get()->*method)(&context, request, &response);
    if (!status.ok()) {
      return fail(Errc::kInternal, std::string("CRI ") + name + ": " + status.error_message());
    }
    return response;
  }

 private:
  std::unique_ptr<Stub> stub_;
};
#define CRI(client, method, request) (client).call(&Stub::method, #method, request)

class Env : public ::testing::Environment {
 public:
  void SetUp() override {
    const char* build = std::getenv("NV_BUILD_DIR");
    if (build == nullptr) {
      skip_ = "run through ctest (NV_BUILD_DIR unset)";
      return;
    }
    if (::geteuid() != 0) {
      skip_ = "containerd needs root";
      return;
    }
    for (const char* tool : {"/usr/bin/containerd", "/usr/bin/ctr", "/usr/sbin/runc"}) {
      if (::access(tool, X_OK) != 0) {
        skip_ = std::string(tool) + " missing: make deps";
        return;
      }
    }
    const std::string images = std::string(build) + "/images/";
    for (const char* tar : {"busybox-oci.tar", "pause-oci.tar"}) {
      if (!std::filesystem::exists(images + tar)) {
        skip_ = images + tar + " missing: run 'make images'";
        return;
      }
    }
    auto started = test::PrivateContainerd::start(
        {.bin_dir = std::string(build) + "/bin", .extra_config = kCriConfig, .cri = true});
    ASSERT_TRUE(started) << started.error().message();
    containerd_ = std::move(*started);
    for (const char* tar : {"busybox-oci.tar", "pause-oci.tar"}) {
      auto imported = containerd_->ctr({"images", "import", images + tar}, 120000, "k8s.io");
      ASSERT_EQ(imported.exit_code, 0) << imported.output;
    }
  }
  void TearDown() override {
    if (!containerd_) return;
    EXPECT_TRUE(containerd_->shims().empty()) << "shims left behind";
    EXPECT_TRUE(containerd_->stop()) << "containerd did not stop on SIGTERM";
    containerd_.reset();
  }

  std::string skip_;
  std::unique_ptr<test::PrivateContainerd> containerd_;
};
Env* const env = static_cast<Env*>(::testing::AddGlobalTestEnvironment(new Env));

class PodE2eTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    if (!env->skip_.empty()) GTEST_SKIP() << env->skip_;
    ASSERT_TRUE(env->containerd_);
    client_ = std::make_unique<CriClient>(env->containerd_->socket());
  }

  cri::PodSandboxConfig podConfig(const std::string& name) const {
    cri::PodSandboxConfig config;
    config.mutable_metadata()->set_name(name);
    config.mutable_metadata()->set_uid(name + "-uid");
    config.mutable_metadata()->set_namespace_("default");
    config.set_log_directory(env->containerd_->root() + "/pods/" + name);
    // Host network: no CNI on the test machines. PID and IPC are shared by the pod.
    auto* ns = config.mutable_linux()->mutable_security_context()->mutable_namespace_options();
    ns->set_network(cri::NODE);
    return config;
  }

  cri::CreateContainerRequest container(const std::string& pod_id,
                                        const cri::PodSandboxConfig& pod, const std::string& name,
                                        std::vector<std::string> command) const {
    cri::CreateContainerRequest request;
    request.set_pod_sandbox_id(pod_id);
    *request.mutable_sandbox_config() = pod;
    auto* config = request.mutable_config();
    config->mutable_metadata()->set_name(name);
    config->mutable_image()->set_image("docker.io/library/busybox:latest");
    for (auto& arg : command) config->add_command(std::move(arg));
    config->set_log_path(name + ".log");
    auto* ns = config->mutable_linux()->mutable_security_context()->mutable_namespace_options();
    ns->set_pid(cri::POD);
    ns->set_ipc(cri::POD);
    ns->set_network(cri::NODE);
    return request;
  }

  std::unique_ptr<CriClient> client_;
};

// QEMU processes descending from `ancestor` (a jailed QEMU is a grandchild).
size_t qemuProcessesUnder(pid_t ancestor) {
  auto parentOf = [](pid_t pid) -> pid_t {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(status, line);) {
      if (line.rfind("PPid:", 0) == 0) return static_cast<pid_t>(std::atoi(line.c_str() + 5));
    }
    return 0;
  };
  size_t count = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const pid_t pid = static_cast<pid_t>(std::atoi(entry.path().filename().c_str()));
    if (pid <= 0) continue;
    std::ifstream comm(entry.path() / "comm");
    std::string name;
    if (!std::getline(comm, name) || name.rfind("qemu-system", 0) != 0) continue;
    for (pid_t p = parentOf(pid); p > 1; p = parentOf(p)) {
      if (p == ancestor) {
        ++count;
        break;
      }
    }
  }
  return count;
}

TEST_P(PodE2eTest, PodLifecycle_TwoContainersShareThePod) {
  auto& cri = *client_;
  auto version = CRI(cri, Version, cri::VersionRequest());
  ASSERT_TRUE(version) << version.error().message();
  EXPECT_EQ(version->runtime_api_version(), "v1");

  const std::string handler = GetParam();
  const auto pod = podConfig("pod-" + handler);
  cri::RunPodSandboxRequest run;
  *run.mutable_config() = pod;
  run.set_runtime_handler(handler);
  auto sandbox = CRI(cri, RunPodSandbox, run);
  ASSERT_TRUE(sandbox) << sandbox.error().message();
  const std::string pod_id = sandbox->pod_sandbox_id();

  std::vector<std::string> ids;
  for (auto [name, command] :
       {std::pair<std::string, std::vector<std::string>>{
            "c1", {"sh", "-c", "echo from-c1 > /dev/shm/mark; exec sleep 1001"}},
        {"c2", {"sleep", "1002"}}}) {
    auto created = CRI(cri, CreateContainer, container(pod_id, pod, name, command));
    ASSERT_TRUE(created) << created.error().message();
    cri::StartContainerRequest start;
    start.set_container_id(created->container_id());
    auto started = CRI(cri, StartContainer, start);
    ASSERT_TRUE(started) << started.error().message();
    ids.push_back(created->container_id());
  }

  // One shim serves the pod; under nanovisor it runs one VM for all three containers.
  const auto shims = env->containerd_->shims();
  ASSERT_EQ(shims.size(), 1u) << "the pod's containers went to several shims";
  if (handler == "nanovisor") {
    EXPECT_EQ(qemuProcessesUnder(shims[0]), 1u);
  }

  cri::ContainerStatusRequest status_request;
  status_request.set_container_id(ids[0]);
  auto status = CRI(cri, ContainerStatus, status_request);
  ASSERT_TRUE(status) << status.error().message();
  EXPECT_EQ(status->status().state(), cri::CONTAINER_RUNNING);

  // c2 sees c1's process (shared PID namespace) and its /dev/shm file (shared IPC).
  cri::ExecSyncRequest exec;
  exec.set_container_id(ids[1]);
  for (const char* arg :
       {"sh", "-c", "for i in $(seq 50); do [ -e /dev/shm/mark ] && break; sleep 0.1; done; "
                    "cat /dev/shm/mark; ps -o args | grep -c '^sleep 100[1]'"}) {
    exec.add_cmd(arg);
  }
  exec.set_timeout(60);
  auto execed = CRI(cri, ExecSync, exec);
  ASSERT_TRUE(execed) << execed.error().message();
  EXPECT_EQ(execed->exit_code(), 0) << execed->stderr();
  EXPECT_EQ(execed->stdout(), "from-c1\n1\n") << execed->stderr();

  // CRI's host files reach the container (copies, under nanovisor).
  cri::ExecSyncRequest hostname;
  hostname.set_container_id(ids[1]);
  hostname.add_cmd("cat");
  hostname.add_cmd("/etc/hostname");
  hostname.set_timeout(60);
  auto named = CRI(cri, ExecSync, hostname);
  ASSERT_TRUE(named) << named.error().message();
  char host[256] = {};
  ASSERT_EQ(::gethostname(host, sizeof(host) - 1), 0);
  EXPECT_EQ(named->stdout(), std::string(host) + "\n") << named->stderr();

  cri::ContainerStatsRequest stats_request;
  stats_request.set_container_id(ids[0]);
  auto stats = CRI(cri, ContainerStats, stats_request);
  ASSERT_TRUE(stats) << stats.error().message();
  EXPECT_GT(stats->stats().memory().working_set_bytes().value(), 0u);
  EXPECT_GT(stats->stats().cpu().usage_core_nano_seconds().value(), 0u);

  cri::StopContainerRequest stop;
  stop.set_container_id(ids[0]);
  stop.set_timeout(2);
  auto stopped = CRI(cri, StopContainer, stop);
  ASSERT_TRUE(stopped) << stopped.error().message();
  status = CRI(cri, ContainerStatus, status_request);
  ASSERT_TRUE(status) << status.error().message();
  EXPECT_EQ(status->status().state(), cri::CONTAINER_EXITED);
  EXPECT_EQ(status->status().exit_code(), 143);  // SIGTERM; sleep has no handler

  cri::StopPodSandboxRequest stop_pod;
  stop_pod.set_pod_sandbox_id(pod_id);
  auto pod_stopped = CRI(cri, StopPodSandbox, stop_pod);
  ASSERT_TRUE(pod_stopped) << pod_stopped.error().message();
  cri::RemovePodSandboxRequest remove_pod;
  remove_pod.set_pod_sandbox_id(pod_id);
  auto removed = CRI(cri, RemovePodSandbox, remove_pod);
  ASSERT_TRUE(removed) << removed.error().message();
  cri::PodSandboxStatusRequest gone;
  gone.set_pod_sandbox_id(pod_id);
  EXPECT_FALSE(CRI(cri, PodSandboxStatus, gone)) << "the pod is still known after removal";
}

// A Kubernetes secret volume as kubelet lays it out (a tmpfs dir with ..data links), bound
// read-only into a container: the container reads it; under nanovisor it reaches the guest as
// an in-memory copy, and no file of containerd's or nanovisor's state (shims, sandboxes,
// console logs) holds its bytes.
TEST_P(PodE2eTest, SecretVolume_ContainerReadsIt_NoHostStateHoldsIt) {
  auto& cri = *client_;
  const std::string handler = GetParam();
  char tmpl[] = "/tmp/nv-kubelet-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::filesystem::path kubelet = tmpl;
  auto random = runCommand({"sh", "-c", "head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \\n'"},
                           std::chrono::milliseconds(5000));
  ASSERT_TRUE(random && random->output.size() == 32);
  const std::string secret = "nv-secret-" + random->output;
  const auto volume = kubelet / "pods/uid-1/volumes/kubernetes.io~secret/creds";
  const auto data = volume / "..2026_11_29_10_00_00.1";
  std::filesystem::create_directories(data);
  std::ofstream(data / "password") << secret;
  std::filesystem::permissions(data / "password", std::filesystem::perms(0644));
  std::filesystem::create_directory_symlink(data.filename(), volume / "..data");
  std::filesystem::create_symlink("..data/password", volume / "password");

  const auto pod = podConfig("secret-" + handler);
  cri::RunPodSandboxRequest run;
  *run.mutable_config() = pod;
  run.set_runtime_handler(handler);
  auto sandbox = CRI(cri, RunPodSandbox, run);
  ASSERT_TRUE(sandbox) << sandbox.error().message();
  auto request = container(sandbox->pod_sandbox_id(), pod, "app", {"sleep", "1003"});
  auto* mount = request.mutable_config()->add_mounts();
  mount->set_container_path("/etc/creds");
  mount->set_host_path(volume.string());
  mount->set_readonly(true);
  auto created = CRI(cri, CreateContainer, request);
  ASSERT_TRUE(created) << created.error().message();
  cri::StartContainerRequest start;
  start.set_container_id(created->container_id());
  auto started = CRI(cri, StartContainer, start);
  ASSERT_TRUE(started) << started.error().message();

  cri::ExecSyncRequest exec;
  exec.set_container_id(created->container_id());
  for (const char* arg : {"sh", "-c", "cat /etc/creds/password; echo; "
                                      "echo x > /etc/creds/password 2>/dev/null || echo ro"}) {
    exec.add_cmd(arg);
  }
  exec.set_timeout(60);
  auto execed = CRI(cri, ExecSync, exec);
  ASSERT_TRUE(execed) << execed.error().message();
  EXPECT_EQ(execed->stdout(), secret + "\nro\n") << execed->stderr();
  if (handler == "nanovisor") {
    // A copy, not the host directory: kubelet's later writes do not reach the guest.
    std::filesystem::remove(volume / "password");
    exec.set_cmd(1, "-c");
    exec.set_cmd(2, "cat /etc/creds/password");
    auto again = CRI(cri, ExecSync, exec);
    ASSERT_TRUE(again) << again.error().message();
    EXPECT_EQ(again->stdout(), secret);
    EXPECT_EQ(test::filesContaining(env->containerd_->root(), secret), std::vector<std::string>{});
    EXPECT_FALSE(test::filesContaining(kubelet, secret).empty()) << "the search itself is broken";
  }

  cri::StopPodSandboxRequest stop_pod;
  stop_pod.set_pod_sandbox_id(sandbox->pod_sandbox_id());
  EXPECT_TRUE(CRI(cri, StopPodSandbox, stop_pod));
  cri::RemovePodSandboxRequest remove_pod;
  remove_pod.set_pod_sandbox_id(sandbox->pod_sandbox_id());
  EXPECT_TRUE(CRI(cri, RemovePodSandbox, remove_pod));
  std::filesystem::remove_all(kubelet);
}

INSTANTIATE_TEST_SUITE_P(Handlers, PodE2eTest, ::testing::Values("runc", "nanovisor"),
                         [](const auto& param_info) { return std::string(param_info.param); });

}  // namespace
}  // namespace nv
