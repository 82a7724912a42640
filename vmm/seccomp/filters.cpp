// SPDX-License-Identifier: Apache-2.0
// The three allow-lists and their installation with libseccomp.
#include "vmm/seccomp/filters.h"

#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include <fmt/format.h>

#include "vmm/kvm/kvm_vcpu.h"

namespace nv::vmm::seccomp {
namespace {

#define NV_SYS(name) Rule{SCMP_SYS(name), #name, std::nullopt, {}}
#define NV_SYS_ARG(name, arg, ...) Rule{SCMP_SYS(name), #name, arg, {__VA_ARGS__}}

// The vCPU kick signal (VcpuThread: SIGRTMIN, glibc's first free real-time signal).
uint64_t kickSignal() { return static_cast<uint64_t>(SIGRTMIN); }

// Every thread: memory (malloc, thread stacks), locks, a thread's end, and logging
// (spdlog writes to stderr and stamps each line with the pid and the thread id).
std::vector<Rule> common() {
  return {
      NV_SYS(brk),  NV_SYS(mmap),   NV_SYS(munmap), NV_SYS(madvise), NV_SYS(mprotect),
      NV_SYS(futex), NV_SYS(exit),  NV_SYS(rt_sigprocmask), NV_SYS(write), NV_SYS(getpid),
      NV_SYS(gettid),
  };
}

std::vector<Rule> vmmList() {
  std::vector<Rule> rules = common();
  rules.insert(rules.end(), {
      // The Asio reactor: readiness, eventfd and timerfd counters, non-blocking sockets; the
      // disks' rate limiters re-arm their timerfds.
      NV_SYS(epoll_wait), NV_SYS(epoll_ctl), NV_SYS(read), NV_SYS_ARG(ioctl, 1, FIONBIO),
      NV_SYS(timerfd_settime),
      // Hybrid vsock: host connections accepted on the socket, guest connections to
      // <uds>_<port> (Unix sockets only).
      NV_SYS(accept), NV_SYS_ARG(socket, 0, AF_UNIX), NV_SYS(connect), NV_SYS(recvfrom),
      NV_SYS(sendto), NV_SYS(shutdown), NV_SYS(close),
      // virtio-blk and virtio-rng.
      NV_SYS(preadv), NV_SYS(pwritev), NV_SYS(fdatasync), NV_SYS(fallocate), NV_SYS(getrandom),
      // virtio-net: a tx chain goes to the tap in one writev (rx frames come with read, the
      // tap was opened and configured before the filter).
      NV_SYS(writev),
      // The signal watcher (SIGTERM/SIGINT); the main thread kicks the vCPUs to stop them and
      // ends the process.
      NV_SYS(rt_sigtimedwait), NV_SYS_ARG(tgkill, 2, kickSignal()), NV_SYS(exit_group),
  });
  return rules;
}

std::vector<Rule> vcpuList() {
  std::vector<Rule> rules = common();
  rules.insert(rules.end(), {
      NV_SYS_ARG(ioctl, 1, kvm::KvmVcpu::runIoctl()),
      // Return from the kick signal's handler.
      NV_SYS(rt_sigreturn),
      // Waking the device loop (Asio's epoll reactor re-arms its eventfd) when a device is
      // activated by the guest's MMIO write.
      NV_SYS(epoll_ctl),
  });
  return rules;
}

std::vector<Rule> apiList() {
  std::vector<Rule> rules = common();
  rules.insert(rules.end(), {
      // The Asio reactor and its timers (Shutdown's deadline, ttrpc's linger).
      NV_SYS(epoll_wait), NV_SYS(epoll_ctl), NV_SYS(read), NV_SYS(timerfd_settime),
      NV_SYS_ARG(ioctl, 1, FIONBIO),
      // ttrpc over the Unix socket.
      NV_SYS(accept), NV_SYS(getsockopt), NV_SYS(recvfrom), NV_SYS(sendto), NV_SYS(shutdown),
      NV_SYS(close),
      // ReplaceDiskMedia (check and open the new file), Stats (/proc/self/status), and the
      // socket file's removal at the end.
      NV_SYS(openat), NV_SYS(newfstatat), NV_SYS(lseek), NV_SYS(unlink),
      // Pause kicks the vCPU threads.
      NV_SYS_ARG(tgkill, 2, kickSignal()),
  });
  return rules;
}

#undef NV_SYS
#undef NV_SYS_ARG

struct CtxDeleter {
  void operator()(void* ctx) const { seccomp_release(ctx); }
};
using Ctx = std::unique_ptr<void, CtxDeleter>;

Result<Ctx> build(ThreadClass cls) {
  Ctx ctx(seccomp_init(SCMP_ACT_KILL_PROCESS));
  if (!ctx) {
    return fail(Errc::kInternal, "seccomp_init failed");
  }
  for (const Rule& rule : allowList(cls)) {
    int rc = 0;
    if (!rule.arg) {
      rc = seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, rule.nr, 0);
    } else {
      for (uint64_t value : rule.values) {
        scmp_arg_cmp cmp{*rule.arg, SCMP_CMP_MASKED_EQ, 0xffffffffULL, value & 0xffffffffULL};
        rc = seccomp_rule_add_array(ctx.get(), SCMP_ACT_ALLOW, rule.nr, 1, &cmp);
        if (rc != 0) break;
      }
    }
    if (rc != 0) {
      return failErrno(-rc, fmt::format("seccomp: add {} to the {} filter", rule.name, name(cls)));
    }
  }
  return ctx;
}

}  // namespace

std::string_view name(ThreadClass cls) {
  switch (cls) {
    case ThreadClass::kVmm:
      return "vmm";
    case ThreadClass::kVcpu:
      return "vcpu";
    case ThreadClass::kApi:
      return "api";
  }
  return "?";
}

std::optional<ThreadClass> parseThreadClass(std::string_view text) {
  if (text == "vmm" || text == "main") return ThreadClass::kVmm;
  if (text == "vcpu") return ThreadClass::kVcpu;
  if (text == "api") return ThreadClass::kApi;
  return std::nullopt;
}

const std::vector<Rule>& allowList(ThreadClass cls) {
  static const std::vector<Rule> vmm = vmmList(), vcpu = vcpuList(), api = apiList();
  switch (cls) {
    case ThreadClass::kVmm:
      return vmm;
    case ThreadClass::kVcpu:
      return vcpu;
    case ThreadClass::kApi:
      return api;
  }
  return vmm;
}

Result<std::vector<uint8_t>> compile(ThreadClass cls) {
  NV_ASSIGN_OR_RETURN(Ctx ctx, build(cls));
  // libseccomp 2.5 exports only to an fd.
  int fd = ::memfd_create("nv-seccomp-bpf", MFD_CLOEXEC);
  if (fd < 0) {
    return failErrno("memfd_create");
  }
  std::vector<uint8_t> out;
  int rc = seccomp_export_bpf(ctx.get(), fd);
  if (rc == 0) {
    off_t size = ::lseek(fd, 0, SEEK_END);
    if (size > 0) {
      out.resize(static_cast<size_t>(size));
      if (::pread(fd, out.data(), out.size(), 0) != size) rc = -EIO;
    }
  }
  ::close(fd);
  if (rc != 0) {
    return failErrno(-rc, fmt::format("seccomp: export the {} filter", name(cls)));
  }
  return out;
}

Result<void> install(ThreadClass cls) {
  NV_ASSIGN_OR_RETURN(Ctx ctx, build(cls));
  // libseccomp sets no_new_privs first (SCMP_FLTATR_CTL_NNP defaults to on).
  if (int rc = seccomp_load(ctx.get()); rc != 0) {
    return failErrno(-rc, fmt::format("seccomp: load the {} filter", name(cls)));
  }
  return {};
}

Result<Policy> Policy::fromEnvironment(bool enabled) {
  Policy policy;
  policy.enabled = enabled;
  if (const char* hook = std::getenv(kTestHookEnv); hook != nullptr && *hook != '\0') {
    policy.test_forbidden = parseThreadClass(hook);
    if (!policy.test_forbidden) {
      return fail(Errc::kInvalidArgument,
                  fmt::format("{}={}: want vmm, vcpu or api", kTestHookEnv, hook));
    }
  }
  return policy;
}

void forbiddenSyscallForTest() { (void)::syscall(SYS_getppid); }

void enterThreadClass(const Policy& policy, ThreadClass cls) {
  if (policy.enabled) {
    if (auto ok = install(cls); !ok) {
      std::fprintf(stderr, "nanovisor-vmm: %s\n", ok.error().message().c_str());
      std::_Exit(1);
    }
  }
  if (policy.test_forbidden == cls) {
    forbiddenSyscallForTest();
  }
}

}  // namespace nv::vmm::seccomp
