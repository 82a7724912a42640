// SPDX-License-Identifier: Apache-2.0
// nanovisor-vmm: argv -> VmConfig -> Vmm::create() -> run(); exits with the guest's status.
#include <CLI/CLI.hpp>

#include <malloc.h>
#include <pthread.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <thread>

#include "common/logging.h"
#include "vmm/api/api_server.h"
#include "vmm/probe/probe.h"
#include "vmm/seccomp/filters.h"
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
  // One malloc arena for every thread: glibc's per-thread arenas read
  // /proc/sys/vm/overcommit_memory the first time one shrinks, an open() the seccomp filters
  // do not allow (the main arena trims with brk).
  ::mallopt(M_ARENA_MAX, 1);
  CLI::App app{"nanovisor-vmm: the nanovisor KVM micro-VM monitor"};
  app.set_version_flag("--version", "nanovisor-vmm 0.1.0");
  app.footer(
      "Exit status: the guest's debug-exit byte (port 0xF4) if it wrote one; 0 after a guest "
      "reset, SIGTERM/SIGINT or an API Shutdown/Kill; 1 for VMM/KVM errors; 2 for bad "
      "arguments. A syscall outside a thread's seccomp allow-list kills the VMM with SIGSYS. "
      "See docs/vmm.md and docs/security.md.");
  nv::vmm::VmConfig config;
  std::vector<std::string> disks, nets;
  std::string initramfs, vsock, api_sock, log_level, seccomp_mode = "on";
  app.add_option("--kernel", config.kernel, "ELF64 kernel (vmlinux) or test guest (required)");
  app.add_option("--initramfs", initramfs, "initramfs image");
  app.add_option("--cmdline", config.cmdline, "kernel command line")->capture_default_str();
  app.add_option("--cpus", config.cpus, "number of vCPUs")->capture_default_str();
  app.add_option("--memory", config.memory_mib, "guest memory in MiB")->capture_default_str();
  app.add_option("--disk", disks,
                 "virtio-blk disk: PATH[,ro|rw][,id=SERIAL][,bps=RATE[:BURST]][,iops=RATE[:BURST]]"
                 " (repeatable; bps: bytes/s with k/m/g, iops: requests/s)");
  app.add_option("--net", nets,
                 "virtio-net on a tap: tap=NAME|fd=N[,mac=52:54:00:xx:xx:xx][,bps=RATE[:BURST]]"
                 "[,pps=RATE[:BURST]] (repeatable, at most 4; tap=NAME attaches to or creates "
                 "the tap, fd=N takes an inherited tap fd opened with IFF_TAP|IFF_NO_PI|"
                 "IFF_VNET_HDR; bps: frame bytes/s with k/m/g, pps: frames/s, each limit per "
                 "direction; default MAC 52:54:00 and three random bytes)");
  app.add_option("--vsock-uds", vsock, "hybrid vsock Unix socket (guest cid 3)");
  app.add_flag("--rng", config.rng, "virtio-rng device fed by the host's getrandom()");
  app.add_option("--console", config.console, "serial output: FILE, or - for stdout")
      ->capture_default_str();
  app.add_option("--api-sock", api_sock,
                 "control socket: ttrpc service nanovisor.vmm.v1.Vmm (proto/vmm_api.proto): "
                 "Describe, Pause, Resume, Shutdown, Kill, ReplaceDiskMedia, Stats");
  app.add_flag("--pvh", config.prefer_pvh, "boot through the PVH entry when the kernel has one");
  app.add_flag("--test-start-all-vcpus", config.start_all_vcpus,
               "test guests: start every vCPU at the entry point (no SIPI)");
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error|off");
  app.add_option("--seccomp", seccomp_mode,
                 "on: each thread class (vmm, vcpu, api) runs under its seccomp allow-list and "
                 "any other syscall kills the VMM with SIGSYS; off: for debugging only "
                 "(docs/security.md)")
      ->check(CLI::IsMember({"on", "off"}))
      ->capture_default_str();
  auto* probe = app.add_subcommand(
      "probe",
      "say whether this host's KVM runs unmodified guests (a tiny guest takes #UD and #BP "
      "through its IDT and returns with iretq); prints one line, exits 0 = yes, 1 = no");
  app.require_subcommand(0, 1);
  CLI11_PARSE(app, argc, argv);
  if (probe->parsed()) {
    if (auto ok = nv::log::init("nanovisor-vmm", log_level.empty() ? "error" : log_level); !ok) {
      std::fprintf(stderr, "nanovisor-vmm: %s\n", ok.error().message().c_str());
      return 2;
    }
    auto result = nv::vmm::probe::runProbe(std::chrono::milliseconds(5000));
    std::printf("%s\n", result.detail.c_str());
    std::fflush(stdout);
    std::_Exit(result.unmodified_guests ? 0 : 1);
  }

  if (auto ok = nv::log::init("nanovisor-vmm", log_level); !ok) {
    std::fprintf(stderr, "nanovisor-vmm: %s\n", ok.error().message().c_str());
    return 2;
  }
  // Before any seccomp filter: create every logger the VMM's threads use (creating one probes
  // the terminal, ioctl TCGETS) and load the time zone (glibc reads /etc/localtime at the first
  // time conversion, even for the UTC log timestamps).
  for (const char* component : {"vmm", "api", "ttrpc"}) {
    (void)nv::log::get(component);
  }
  ::tzset();
  for (const auto& spec : disks) {
    auto disk = nv::vmm::VmConfig::parseDisk(spec);
    if (!disk) {
      std::fprintf(stderr, "nanovisor-vmm: %s\n", disk.error().message().c_str());
      return 2;
    }
    config.disks.push_back(*disk);
  }
  for (const auto& spec : nets) {
    auto net = nv::vmm::VmConfig::parseNet(spec);
    if (!net) {
      std::fprintf(stderr, "nanovisor-vmm: %s\n", net.error().message().c_str());
      return 2;
    }
    config.nets.push_back(*net);
  }
  if (!initramfs.empty()) {
    config.initramfs = initramfs;
  }
  if (!vsock.empty()) {
    config.vsock_uds = vsock;
  }
  if (!api_sock.empty()) {
    config.api_sock = api_sock;
  }
  auto policy = nv::vmm::seccomp::Policy::fromEnvironment(seccomp_mode == "on");
  if (!policy) {
    std::fprintf(stderr, "nanovisor-vmm: %s\n", policy.error().message().c_str());
    return 2;
  }
  // Each thread enters its class once its setup is done (files, KVM fds and guest memory are
  // opened and mapped by Vmm::create() below, before any filter).
  auto enter = [p = *policy](nv::vmm::seccomp::ThreadClass cls) {
    return [p, cls] { nv::vmm::seccomp::enterThreadClass(p, cls); };
  };
  using nv::vmm::seccomp::ThreadClass;
  // SIGTERM/SIGINT: stop the VM from the host. A watcher thread waits for them; they are
  // blocked before any thread starts (the API thread too), so none of them takes one.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  auto vmm = nv::vmm::Vmm::create(config, start);
  if (!vmm) {
    std::fprintf(stderr, "nanovisor-vmm: %s\n", vmm.error().message().c_str());
    return 1;
  }
  g_vmm = vmm->get();
  std::unique_ptr<nv::vmm::api::ApiServer> api;
  if (config.api_sock) {
    auto server =
        nv::vmm::api::ApiServer::start(**vmm, *config.api_sock, enter(ThreadClass::kApi));
    if (!server) {
      std::fprintf(stderr, "nanovisor-vmm: %s\n", server.error().message().c_str());
      return 1;
    }
    api = std::move(*server);
  }
  std::thread([set, hook = enter(ThreadClass::kVmm)] {
    ::pthread_setname_np(::pthread_self(), "nv-signals");
    hook();
    int sig = 0;
    if (sigwait(&set, &sig) == 0 && g_vmm != nullptr) {
      g_vmm->stop(nv::vmm::StopReason::kHost, 0, "stopped by signal");
    }
  }).detach();
  if (!policy->enabled) {
    nv::log::get("vmm")->warn("seccomp filters are off (--seccomp off)");
  }
  nv::vmm::VmExit exit = (*vmm)->run({.vcpu = enter(ThreadClass::kVcpu),
                                      .devices = enter(ThreadClass::kVmm),
                                      .main = enter(ThreadClass::kVmm)});
  api.reset();  // closes the control connections and removes the socket
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
