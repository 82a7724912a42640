// SPDX-License-Identifier: Apache-2.0
#include "tests/support/private_containerd.h"

#include <signal.h>
#include <stdlib.h>

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
  // containerd hands its environment to the shims it starts: their sandboxes and rootfs disks
  // go under the temp dir too.
  const char* path = std::getenv("PATH");
  NV_ASSIGN_OR_RETURN(
      auto process,
      Subprocess::spawn(
          {.argv = {"/usr/bin/containerd", "--config", c->root_ + "/config.toml"},
           .extra_env = {"PATH=" + options.bin_dir + ":" + (path != nullptr ? path : "/usr/bin:/bin"),
                         "NANOVISOR_STATE_DIR=" + c->root_ + "/nv-state",
                         "NANOVISOR_IMAGE_ROOT=" + c->root_ + "/nv-images"},
           .stdout_path = c->root_ + "/containerd.log",
           .stderr_path = "=stdout",
           .new_session = true,
           .die_with_parent = true}));
  c->process_.emplace(std::move(process));
  for (int i = 0; i < 100; ++i) {
    if (c->ctr({"version"}, 10000).exit_code == 0) return c;
    std::this_thread::sleep_for(milliseconds(100));
  }
  return fail(Errc::kUnavailable, "containerd did not come up: " + c->log());
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

}  // namespace nv::test
