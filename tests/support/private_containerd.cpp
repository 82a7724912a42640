// SPDX-License-Identifier: Apache-2.0
#include "tests/support/private_containerd.h"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace nv::test {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

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

Result<std::unique_ptr<PrivateContainerd>> PrivateContainerd::start(const Options& options) {
  std::unique_ptr<PrivateContainerd> c(new PrivateContainerd());
  char tmpl[] = "/tmp/nv-containerd-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return failErrno("mkdtemp " + std::string(tmpl));
  c->root_ = tmpl;
  c->socket_ = c->root_ + "/containerd.sock";
  std::ofstream config(c->root_ + "/config.toml");
  config << "version = 2\n"
         << "root = \"" << c->root_ << "/root\"\n"
         << "state = \"" << c->root_ << "/state\"\n";
  if (!options.cri) config << "disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n";
  config << "[grpc]\n  address = \"" << c->socket_ << "\"\n"
         << "[debug]\n  level = \"debug\"\n"
         << options.extra_config;
  config.close();
  c->bin_dir_ = options.bin_dir;
  NV_TRY(c->launch());
  return c;
}

Result<void> PrivateContainerd::launch() {
  // containerd hands its environment to the shims it starts: their sandboxes and rootfs disks
  // go under the temp dir too.
  const char* path = std::getenv("PATH");
  NV_ASSIGN_OR_RETURN(
      auto process,
      Subprocess::spawn(
          {.argv = {"/usr/bin/containerd", "--config", root_ + "/config.toml"},
           .extra_env = {"PATH=" + bin_dir_ + ":" + (path != nullptr ? path : "/usr/bin:/bin"),
                         "NANOVISOR_STATE_DIR=" + root_ + "/nv-state",
                         "NANOVISOR_IMAGE_ROOT=" + root_ + "/nv-images"},
           .stdout_path = root_ + "/containerd.log",
           .stderr_path = "=stdout",
           .new_session = true,
           .die_with_parent = true}));
  process_.emplace(std::move(process));
  for (int i = 0; i < 100; ++i) {
    if (ctr({"version"}, 10000).exit_code == 0) return {};
    std::this_thread::sleep_for(milliseconds(100));
  }
  return fail(Errc::kUnavailable, "containerd did not come up: " + log());
}

Result<void> PrivateContainerd::restart() {
  if (!stop()) return fail(Errc::kTimeout, "containerd did not stop on SIGTERM within 20 s");
  return launch();
}

PrivateContainerd::~PrivateContainerd() {
  (void)stop();
  std::error_code ec;
  if (!root_.empty()) fs::remove_all(root_, ec);
}

bool PrivateContainerd::stop() {
  if (!process_) return true;
  (void)process_->signal(SIGTERM);
  const bool stopped = process_->wait(milliseconds(20000)).has_value();
  process_.reset();  // SIGKILL if it is still there
  return stopped;
}

RunResult PrivateContainerd::ctr(const std::vector<std::string>& args, int timeout_ms,
                                 const std::string& ns) const {
  std::vector<std::string> argv = {"/usr/bin/ctr", "--address", socket_};
  if (!ns.empty()) argv.insert(argv.end(), {"-n", ns});
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = runCommand(argv, milliseconds(timeout_ms));
  if (!r) return {.exit_code = -1, .output = r.error().message()};
  return *r;
}

std::string shimSuiteMissing(const std::string& build) {
  if (::geteuid() != 0) return "containerd needs root";
  for (const char* tool : {"/usr/bin/containerd", "/usr/bin/ctr"}) {
    if (::access(tool, X_OK) != 0) return std::string(tool) + " missing: apt-get install containerd";
  }
  const std::string shim = build + "/bin/containerd-shim-nanovisor-v2";
  if (::access(shim.c_str(), X_OK) != 0) return shim + " not built";
  const std::string share = build + "/share/nanovisor/";
  for (const char* f : {"vmlinux", "initramfs.cpio.gz"}) {
    if (::access((share + f).c_str(), R_OK) != 0) {
      return share + f + " missing: run 'make kernel initramfs'";
    }
  }
  const std::string tar = build + "/images/busybox-oci.tar";
  if (::access(tar.c_str(), R_OK) != 0) return tar + " missing: run 'make images'";
  if (::access("/dev/kvm", R_OK | W_OK) != 0 &&
      ::access("/usr/bin/qemu-system-x86_64", X_OK) != 0) {
    return "neither /dev/kvm nor qemu-system-x86_64: no way to run a VM here";
  }
  return "";
}

Result<std::string> PrivateContainerd::importBusybox(const std::string& build) const {
  auto imported = ctr({"images", "import", build + "/images/busybox-oci.tar"}, 120000);
  if (imported.exit_code != 0) return fail(Errc::kUnavailable, "ctr images import: " + imported.output);
  auto listed = ctr({"images", "ls", "-q"}, 10000);
  const std::string image = listed.output.substr(0, listed.output.find('\n'));
  if (image.empty()) return fail(Errc::kNotFound, "no image after import: " + listed.output);
  return image;
}

}  // namespace nv::test
