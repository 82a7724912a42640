// SPDX-License-Identifier: Apache-2.0
// Bus: a range map from PIO ports or MMIO addresses to BusDevices.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>

#include "common/result.h"
#include "vmm/bus/bus_device.h"

namespace nv::vmm {

// Non-overlapping [base, base + len) windows. Built before vCPUs start and immutable
// afterwards, so lookups from vCPU threads need no lock.
class Bus {
 public:
  // Adds a window; fails when it is empty, wraps or overlaps an existing one.
  [[nodiscard]] Result<void> insert(std::shared_ptr<BusDevice> device, uint64_t base,
                                    uint64_t len);

  // Dispatches an access; false when no window covers [addr, addr + size) entirely. An
  // unclaimed read leaves `data` zero-filled.
  bool read(uint64_t addr, std::span<uint8_t> data) const;
  bool write(uint64_t addr, std::span<const uint8_t> data) const;

 private:
  struct Window {
    uint64_t len;
    std::shared_ptr<BusDevice> device;
  };
  // (window, offset) for an access, or nullptr.
  const Window* find(uint64_t addr, uint64_t size, uint64_t* offset) const;
  std::map<uint64_t, Window> windows_;  // keyed by base
};

}  // namespace nv::vmm
