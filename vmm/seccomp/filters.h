// SPDX-License-Identifier: Apache-2.0
// seccomp allow-lists for nanovisor-vmm, one per thread class (Firecracker's
// resources/seccomp/ idea): each thread installs its class's filter once its setup is done
// (files, KVM fds and guest memory are opened and mapped before), right before it handles
// guest- or client-controlled input. Anything not listed kills the whole VMM with SIGSYS
// (SECCOMP_RET_KILL_PROCESS). The lists and their counts are documented in docs/security.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace nv::vmm::seccomp {

// kVmm: the main thread, the device loop (Asio: virtio queues, vsock sockets, block I/O) and
// the signal watcher. kVcpu: one per vCPU (KVM_RUN and MMIO/PIO dispatch). kApi: the control
// API server (ttrpc over a Unix socket).
enum class ThreadClass { kVmm, kVcpu, kApi };

inline constexpr ThreadClass kAllThreadClasses[] = {ThreadClass::kVmm, ThreadClass::kVcpu,
                                                    ThreadClass::kApi};

[[nodiscard]] std::string_view name(ThreadClass cls);
// "vmm" (alias "main"), "vcpu", "api".
[[nodiscard]] std::optional<ThreadClass> parseThreadClass(std::string_view text);

// One allowed syscall; when `arg` is set, only with argument number `arg` (32-bit compare)
// equal to one of `values`.
struct Rule {
  int nr = 0;
  const char* name = "";
  std::optional<unsigned> arg;
  std::vector<uint64_t> values;
};

// The allow-list of a class (one entry per syscall).
[[nodiscard]] const std::vector<Rule>& allowList(ThreadClass cls);

// The compiled BPF program of a class's filter (struct sock_filter[] bytes).
[[nodiscard]] Result<std::vector<uint8_t>> compile(ThreadClass cls);

// Builds the class's filter and loads it into the calling thread (sets no_new_privs first).
// Threads the caller creates afterwards inherit it.
[[nodiscard]] Result<void> install(ThreadClass cls);

// nanovisor-vmm's choice: filters on (default) or off (--seccomp off), and the test hook.
struct Policy {
  bool enabled = true;
  // Set from NANOVISOR_VMM_TEST_FORBIDDEN_SYSCALL (vmm|main|vcpu|api): each thread of
  // that class makes a syscall no list allows right after installing its filter, so a test
  // can see the VMM die of SIGSYS. Only the environment of the process that starts the VMM
  // sets it; nothing a guest or an API client sends can.
  std::optional<ThreadClass> test_forbidden;

  // Reads the test hook from the environment; an unknown value is an error.
  [[nodiscard]] static Result<Policy> fromEnvironment(bool enabled);
};

// Installs `cls`'s filter in the calling thread when the policy enables it, then runs the
// test hook when it names `cls`. On failure it prints one line to stderr and ends the
// process (status 1): a thread never goes on unfiltered by accident.
void enterThreadClass(const Policy& policy, ThreadClass cls);

// The syscall the test hook makes (getppid: harmless, and in no list).
void forbiddenSyscallForTest();

inline constexpr const char* kTestHookEnv = "NANOVISOR_VMM_TEST_FORBIDDEN_SYSCALL";

}  // namespace nv::vmm::seccomp
