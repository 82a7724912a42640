// SPDX-License-Identifier: Apache-2.0
// nanovisor-vmm: argv -> VmConfig -> Vmm::create() -> run(); exits with the guest's status.
#include <CLI/CLI.hpp>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <thread>

#include "common/logging.h"
#include "vmm/vmm.h"

namespace {

nv::vmm::Vmm* g_vmm = nullptr;

// Exit codes: the debug-exit byte when the guest used that port, 0 after a guest reset or
// shutdown, 1 for VMM/KVM errors, 2 for bad arguments.
int exitCode(const nv::vmm::VmExit& exit) {
  switch (exit.reason) {
    case nv::vmm::StopReason::kDebugExit:
      return exit.status;
    case nv::vmm::StopReason::kReset:
    case nv::vmm::StopReason::kGuestShutdown:
    case nv::vmm::StopReason::kHost:
      return 0;
    default:
      return 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  auto start = std::chrono::steady_clock::now();
  CLI::App app{"nanovisor-vmm: the nanovisor KVM micro-VM monitor"};
  app.set_version_flag("--version", "nanovisor-vmm 0.1.0");
  nv::vmm::VmConfig config;
  std::vector<std::string> disks;
  std::string initramfs, vsock, api_sock, log_level;
  app.add_option("--kernel", config.kernel, "ELF64 kernel (vmlinux) or test guest")->required();
  app.add_option("--initramfs", initramfs, "initramfs image");
  app.add_option("--cmdline", config.cmdline, "kernel command line")->capture_default_str();
  app.add_option("--cpus", config.cpus, "number of vCPUs")->capture_default_str();
  app.add_option("--memory", config.memory_mib, "guest memory in MiB")->capture_default_str();
  app.add_option("--disk", disks, "virtio-blk disk: PATH[,ro] (repeatable)");
  app.add_option("--vsock-uds", vsock, "hybrid vsock Unix socket (guest cid 3)");
  app.add_option("--console", config.console, "serial output: FILE, or - for stdout")
      ->capture_default_str();
  app.add_option("--api-sock", api_sock, "control socket path");
  app.add_flag("--pvh", config.prefer_pvh, "boot through the PVH entry when the kernel has one");
  app.add_flag("--test-start-all-vcpus", config.start_all_vcpus,
               "test guests: start every vCPU at the entry point (no SIPI)");
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error|off");
  CLI11_PARSE(app, argc, argv);

  if (auto ok = nv::log::init("nanovisor-vmm", log_level); !ok) {
    std::fprintf(stderr, "nanovisor-vmm: %s\n", ok.error().message().c_str());
    return 2;
  }
  for (const auto& spec : disks) {
    auto disk = nv::vmm::VmConfig::parseDisk(spec);
    if (!disk) {
      std::fprintf(stderr, "nanovisor-vmm: %s\n", disk.error().message().c_str());
      return 2;
    }
    config.disks.push_back(*disk);
  }
  if (!initramfs.empty()) {
    config.initramfs = initramfs;
  }
  if (!vsock.empty()) {
    config.vsock_uds = vsock;
  }
  if (!api_sock.empty()) {
    std::fprintf(stderr, "nanovisor-vmm: --api-sock: the control API is not implemented yet\n");
    return 2;
  }
  auto vmm = nv::vmm::Vmm::create(config, start);
  if (!vmm) {
    std::fprintf(stderr, "nanovisor-vmm: %s\n", vmm.error().message().c_str());
    return 1;
  }
  g_vmm = vmm->get();
  // SIGTERM/SIGINT: stop the VM from the host. A watcher thread waits for them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread([set] {
    int sig = 0;
    if (sigwait(&set, &sig) == 0 && g_vmm != nullptr) {
      g_vmm->stop(nv::vmm::StopReason::kHost, 0, "stopped by signal");
    }
  }).detach();
  nv::vmm::VmExit exit = (*vmm)->run();
  auto logger = nv::log::get("vmm");
  if (exitCode(exit) == 1) {
    logger->error("VM stopped: {}", exit.message);
  } else {
    logger->info("VM stopped: {}", exit.message);
  }
  int code = exitCode(exit);
  std::fflush(stdout);
  std::_Exit(code);  // the signal watcher thread is still blocked in sigwait
}
