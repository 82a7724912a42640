// SPDX-License-Identifier: Apache-2.0
// VcpuThread: one thread per vCPU running KVM_RUN and dispatching exits to the buses; kicked
// out of the guest by a signal plus immediate_exit for stop and pause.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <pthread.h>
#include <string>
#include <thread>

#include "vmm/bus/bus.h"
#include "vmm/hypervisor/vcpu_exit.h"
#include "vmm/kvm/kvm_vcpu.h"

namespace nv::vmm {

// Why a vCPU asks the VM to stop.
enum class StopReason { kNone, kReset, kDebugExit, kTripleFault, kGuestShutdown, kError, kHost };

// Decides what a VM exit means: buses for I/O, a stop request for everything terminal.
// Pure apart from the buses it calls; unit-testable without KVM.
class ExitHandler {
 public:
  using StopFn = std::function<void(StopReason, int status, std::string message)>;
  ExitHandler(const Bus& pio, const Bus& mmio, StopFn stop)
      : pio_(pio), mmio_(mmio), stop_(std::move(stop)) {}
  // Returns false when the vCPU should stop running.
  bool handle(uint32_t vcpu, const VcpuExit& exit);
  [[nodiscard]] uint64_t unhandledAccesses() const { return unhandled_.load(); }

 private:
  const Bus& pio_;
  const Bus& mmio_;
  StopFn stop_;
  std::atomic<uint64_t> unhandled_{0};
};

// Owns the thread of one vCPU. start() once; stop() and pause()/resume() from any thread.
class VcpuThread {
 public:
  VcpuThread(std::unique_ptr<kvm::KvmVcpu> vcpu, ExitHandler& handler)
      : vcpu_(std::move(vcpu)), handler_(handler) {}
  ~VcpuThread();
  VcpuThread(const VcpuThread&) = delete;
  VcpuThread& operator=(const VcpuThread&) = delete;

  // Installs the (no-op) kick signal handler; call once per process before start().
  static void installKickSignal();

  // Starts the thread; `on_thread_start` runs first on it, before the first KVM_RUN
  // (nanovisor-vmm installs the thread's seccomp filter there).
  void start(std::function<void()> on_thread_start = {});
  // Asks the thread to leave KVM_RUN and exit; join() waits for it.
  void stop();
  void join();
  void pause();
  void resume();
  [[nodiscard]] bool paused() const { return paused_ack_.load(); }
  // Waits until the thread has parked after pause() (true), or has ended; false on timeout.
  [[nodiscard]] bool waitParked(std::chrono::milliseconds timeout);
  // KVM exits handled so far (I/O, MMIO, halts; not kicks).
  [[nodiscard]] uint64_t exits() const { return exits_.load(); }
  [[nodiscard]] kvm::KvmVcpu& vcpu() { return *vcpu_; }

 private:
  void loop();
  void loopBody();
  void kick();

  std::unique_ptr<kvm::KvmVcpu> vcpu_;
  ExitHandler& handler_;
  std::thread thread_;
  std::atomic<pthread_t> native_{};
  std::atomic<bool> stop_{false};
  std::atomic<bool> pause_{false};
  std::atomic<bool> paused_ack_{false};
  std::atomic<bool> started_{false};
  std::atomic<bool> finished_{false};
  std::atomic<uint64_t> exits_{0};
  std::mutex mutex_;
  std::condition_variable cv_;         // resume/stop wake the parked thread
  std::condition_variable parked_cv_;  // the thread parked or ended
};

}  // namespace nv::vmm
