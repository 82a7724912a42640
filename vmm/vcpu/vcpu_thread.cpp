// SPDX-License-Identifier: Apache-2.0
// vCPU run loop, exit dispatch and kicking.
#include "vmm/vcpu/vcpu_thread.h"

#include <csignal>

#include <fmt/format.h>

#include "common/logging.h"

namespace nv::vmm {
namespace {

int kickSignal() { return SIGRTMIN; }
void onKick(int) {}

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

}  // namespace

bool ExitHandler::handle(uint32_t vcpu, const VcpuExit& exit) {
  static auto logger = log::get("vmm");
  return std::visit(
      Overloaded{
          [&](const exit::IoIn& io) {
            if (!pio_.read(io.port, io.data)) {
              ++unhandled_;
              NV_LOG_RATE_LIMITED(logger, spdlog::level::debug, "unhandled port read {:#x}",
                                  io.port);
            }
            return true;
          },
          [&](const exit::IoOut& io) {
            if (!pio_.write(io.port, io.data)) {
              ++unhandled_;
              NV_LOG_RATE_LIMITED(logger, spdlog::level::debug, "unhandled port write {:#x}",
                                  io.port);
            }
            return true;
          },
          [&](const exit::MmioRead& mmio) {
            if (!mmio_.read(mmio.addr, mmio.data)) {
              ++unhandled_;
              NV_LOG_RATE_LIMITED(logger, spdlog::level::debug, "unhandled MMIO read {:#x}",
                                  mmio.addr);
            }
            return true;
          },
          [&](const exit::MmioWrite& mmio) {
            if (!mmio_.write(mmio.addr, mmio.data)) {
              ++unhandled_;
              NV_LOG_RATE_LIMITED(logger, spdlog::level::debug, "unhandled MMIO write {:#x}",
                                  mmio.addr);
            }
            return true;
          },
          [&](const exit::Hlt&) {
            stop_(StopReason::kGuestShutdown, 0, fmt::format("vCPU {} halted", vcpu));
            return false;
          },
          [&](const exit::Shutdown&) {
            stop_(StopReason::kTripleFault, 0, fmt::format("vCPU {} triple fault", vcpu));
            return false;
          },
          [&](const exit::SystemEvent& event) {
            stop_(event.type == 2 ? StopReason::kReset : StopReason::kGuestShutdown, 0,
                  fmt::format("vCPU {} system event {}", vcpu, event.type));
            return false;
          },
          [&](const exit::Interrupted&) { return true; },
          [&](const exit::InternalError& error) {
            stop_(StopReason::kError, 1,
                  fmt::format("vCPU {}: KVM internal error (suberror {}); on a PVM host this is "
                              "where the guest used its IDT", vcpu, error.suberror));
            return false;
          },
          [&](const exit::FailEntry& failure) {
            stop_(StopReason::kError, 1, fmt::format("vCPU {}: VM entry failed (reason {:#x})",
                                                     vcpu, failure.reason));
            return false;
          },
          [&](const exit::Unknown& unknown) {
            stop_(StopReason::kError, 1, fmt::format("vCPU {}: unexpected KVM exit {}", vcpu,
                                                     unknown.reason));
            return false;
          },
      },
      exit);
}

void VcpuThread::installKickSignal() {
  struct sigaction action {};
  action.sa_handler = onKick;
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;  // no SA_RESTART: KVM_RUN must return EINTR
  ::sigaction(kickSignal(), &action, nullptr);
}

VcpuThread::~VcpuThread() {
  stop();
  join();
}

void VcpuThread::start(std::function<void()> on_thread_start) {
  started_.store(true);
  thread_ = std::thread([this, hook = std::move(on_thread_start)] {
    native_.store(::pthread_self());
    ::pthread_setname_np(::pthread_self(), fmt::format("nv-vcpu{}", vcpu_->id()).c_str());
    if (hook) {
      hook();
    }
    loop();
  });
}

void VcpuThread::kick() {
  vcpu_->setImmediateExit(true);
  pthread_t native = native_.load();
  if (thread_.joinable() && native != pthread_t{}) {
    ::pthread_kill(native, kickSignal());
  }
}

void VcpuThread::stop() {
  stop_.store(true);
  {
    std::lock_guard lock(mutex_);
    cv_.notify_all();
  }
  kick();
}

void VcpuThread::join() {
  if (thread_.joinable()) {
    thread_.join();
  }
}

void VcpuThread::pause() {
  pause_.store(true);
  kick();
}

void VcpuThread::resume() {
  std::lock_guard lock(mutex_);
  pause_.store(false);
  cv_.notify_all();
}

bool VcpuThread::waitParked(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  if (!started_.load()) {
    return true;  // not started yet: it parks before its first KVM_RUN
  }
  return parked_cv_.wait_for(lock, timeout,
                             [&] { return paused_ack_.load() || finished_.load(); });
}

void VcpuThread::loop() {
  loopBody();
  std::lock_guard lock(mutex_);
  finished_.store(true);
  parked_cv_.notify_all();
}

void VcpuThread::loopBody() {
  static auto logger = log::get("vmm");
  while (!stop_.load()) {
    if (pause_.load()) {
      std::unique_lock lock(mutex_);
      paused_ack_.store(true);
      parked_cv_.notify_all();
      cv_.wait(lock, [&] { return !pause_.load() || stop_.load(); });
      paused_ack_.store(false);
      continue;
    }
    auto exit = vcpu_->run();
    if (!exit) {
      handler_.handle(vcpu_->id(), VcpuExit(exit::Unknown{~0U}));
      logger->error("{}", exit.error().message());
      break;
    }
    if (std::holds_alternative<exit::Interrupted>(*exit)) {
      vcpu_->setImmediateExit(false);
      continue;
    }
    ++exits_;
    if (!handler_.handle(vcpu_->id(), *exit)) {
      break;
    }
  }
}

}  // namespace nv::vmm
