// SPDX-License-Identifier: Apache-2.0
// Debug ports: the boot timer (0x3F0) and the debug-exit port (0xF4) used by test guests.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <vector>

#include "vmm/bus/bus_device.h"

namespace nv::vmm {

// Boot timer, Firecracker's original convention: the guest writes a byte to port 0x3F0; the
// VMM records and logs the time since the VMM process started. 123 means "boot complete"
// (init reached); other values are free-form markers. Called on vCPU threads.
class BootTimer final : public BusDevice {
 public:
  static constexpr uint64_t kPort = 0x3F0;
  static constexpr uint8_t kBootComplete = 123;
  struct Mark {
    uint8_t value;
    std::chrono::microseconds since_start;
  };

  explicit BootTimer(std::chrono::steady_clock::time_point start) : start_(start) {}
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;
  // Marks recorded so far (at most kMaxMarks; later ones are only logged).
  [[nodiscard]] std::vector<Mark> marks();

 private:
  static constexpr size_t kMaxMarks = 256;
  std::chrono::steady_clock::time_point start_;
  std::mutex mutex_;
  std::vector<Mark> marks_;
};

// Debug exit, QEMU isa-debug-exit style: a byte written to port 0xF4 ends the VM with that
// byte as the guest exit status. Lets test guests report pass/fail without an ACPI stack.
class DebugExit final : public BusDevice {
 public:
  static constexpr uint64_t kPort = 0xF4;
  explicit DebugExit(std::function<void(uint8_t)> on_exit) : on_exit_(std::move(on_exit)) {}
  void read(uint64_t, std::span<uint8_t>) override {}
  void write(uint64_t offset, std::span<const uint8_t> data) override;

 private:
  std::function<void(uint8_t)> on_exit_;
};

}  // namespace nv::vmm
