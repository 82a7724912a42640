// SPDX-License-Identifier: Apache-2.0
// `ctr run --runtime io.containerd.nanovisor.v2` against a private containerd (own root, state,
// socket and config in a temp dir; the CRI plugin disabled). The workload runs in a micro-VM:
// `uname -r` prints the guest kernel's release, exit codes and both output streams come back.
// Afterwards no shim, VMM, socket, mount or sandbox directory of ours is left.
#include <openssl/sha.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "common/subprocess.h"

namespace nv {
namespace {

using std::chrono::milliseconds;
namespace fs = std::filesystem;

constexpr const char* kRuntime = "io.containerd.nanovisor.v2";
constexpr const char* kShim = "containerd-shim-nanovisor-v2";

std::string readFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Pids of processes whose command line contains `needle`.
std::vector<pid_t> processesMatching(const std::string& needle) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmdline = readFile(entry.path() / "cmdline");
    for (auto& c : cmdline) {
      if (c == '\0') c = ' ';
    }
    if (cmdline.find(needle) != std::string::npos) out.push_back(std::stoi(name));
  }
  return out;
}

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
    if (::geteuid() != 0) return skip("containerd needs root");
    for (const char* tool : {"/usr/bin/containerd", "/usr/bin/ctr"}) {
      if (::access(tool, X_OK) != 0) return skip(std::string(tool) + " missing: apt-get install containerd");
    }
    bin_ = std::string(build) + "/bin";
    if (::access((bin_ + "/" + kShim).c_str(), X_OK) != 0) return skip(bin_ + "/" + kShim + " not built");
    const std::string share = std::string(build) + "/share/nanovisor/";
    for (const char* f : {"vmlinux", "initramfs.cpio.gz"}) {
      if (!fs::exists(share + f)) return skip(share + f + " missing: run 'make kernel initramfs'");
    }
    const std::string tar = std::string(build) + "/images/busybox-oci.tar";
    if (!fs::exists(tar)) return skip(tar + " missing: run 'make images'");
    if (::access("/dev/kvm", R_OK | W_OK) != 0 &&
        ::access("/usr/bin/qemu-system-x86_64", X_OK) != 0) {
      return skip("neither /dev/kvm nor qemu-system-x86_64: no way to run a VM here");
    }

    char tmpl[] = "/tmp/nv-shim-e2e-XXXXXX";
    root_ = ::mkdtemp(tmpl);
    socket_ = root_ + "/containerd.sock";
    std::ofstream(root_ + "/config.toml")
        << "version = 2\n"
        << "root = \"" << root_ << "/root\"\n"
        << "state = \"" << root_ << "/state\"\n"
        << "disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n"
        << "[grpc]\n  address = \"" << socket_ << "\"\n"
        << "[debug]\n  level = \"debug\"\n";
    // containerd finds the shim on its PATH and hands its environment to it: the shim's
    // sandboxes and rootfs disks go under the temp dir too.
    const char* path = std::getenv("PATH");
    auto spawned = Subprocess::spawn(
        {.argv = {"/usr/bin/containerd", "--config", root_ + "/config.toml"},
         .extra_env = {"PATH=" + bin_ + ":" + (path != nullptr ? path : "/usr/bin:/bin"),
                       "NANOVISOR_STATE_DIR=" + root_ + "/nv-state",
                       "NANOVISOR_IMAGE_ROOT=" + root_ + "/nv-images"},
         .stdout_path = root_ + "/containerd.log",
         .stderr_path = "=stdout",
         .new_session = true,
         .die_with_parent = true});
    if (!spawned) return skip("starting containerd: " + spawned.error().message());
    containerd_.emplace(std::move(*spawned));
    bool up = false;
    for (int i = 0; i < 100 && !up; ++i) {
      auto v = ctr({"version"}, 10000);
      up = v.exit_code == 0;
      if (!up) std::this_thread::sleep_for(milliseconds(100));
    }
    if (!up) return fatal("containerd did not come up: " + readFile(root_ + "/containerd.log"));
    auto imported = ctr({"images", "import", tar}, 120000);
    if (imported.exit_code != 0) return fatal("ctr images import: " + imported.output);
    auto listed = ctr({"images", "ls", "-q"}, 10000);
    std::istringstream names(listed.output);
    std::getline(names, image_);
    if (image_.empty()) return fatal("no image after import: " + listed.output);
  }

  void TearDown() override {
    if (!containerd_) {
      if (!root_.empty()) fs::remove_all(root_);
      return;
    }
    (void)containerd_->signal(SIGTERM);
    auto stopped = containerd_->wait(milliseconds(20000));
    EXPECT_TRUE(stopped.has_value()) << "containerd did not stop on SIGTERM";
    containerd_.reset();  // SIGKILL if it is still there
    // Nothing of ours may be left: shims, VMMs, mounts, sockets.
    EXPECT_TRUE(leftoverShims().empty()) << kShim << " processes left";
    EXPECT_TRUE(processesMatching(root_ + "/nv-state").empty()) << "VMM processes left";
    EXPECT_EQ(readFile("/proc/self/mountinfo").find(root_), std::string::npos) << "mounts left";
    for (const auto& id : ids_) {
      const std::string sock =
          "/run/containerd/s/" + sha256Hex(socket_ + "/default/" + id);
      EXPECT_FALSE(fs::exists(sock)) << "shim socket left: " << sock;
    }
    fs::remove_all(root_);
  }

  // Shim processes serving our containerd (their -address is our socket).
  std::vector<pid_t> leftoverShims() const { return processesMatching("-address " + socket_); }

  RunResult ctr(std::vector<std::string> args, int timeout_ms) const {
    std::vector<std::string> argv = {"/usr/bin/ctr", "--address", socket_};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = runCommand(argv, milliseconds(timeout_ms));
    if (!r) return {.exit_code = -1, .output = r.error().message()};
    return *r;
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
  std::string log() const { return readFile(root_ + "/containerd.log"); }
  const std::string& skipReason() const { return skip_; }
  const std::string& root() const { return root_; }

 private:
  void skip(std::string why) { skip_ = std::move(why); }
  void fatal(std::string why) { skip_ = "FAIL: " + why; }

  std::string bin_;
  std::string root_;
  std::string socket_;
  std::string image_;
  std::string skip_;
  std::vector<std::string> ids_;
  std::optional<Subprocess> containerd_;
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

}  // namespace
}  // namespace nv
