// SPDX-License-Identifier: Apache-2.0
// BusDevice: what the PIO/MMIO buses dispatch guest accesses to.
#pragma once

#include <cstdint>
#include <span>

namespace nv::vmm {

// A device window on the PIO or MMIO bus. Called on vCPU threads (several at once): each
// device locks its own state. `offset` is relative to the window base; `data` is the access
// (1, 2, 4 or 8 bytes, little endian). Reads must fill every byte of `data`.
class BusDevice {
 public:
  virtual ~BusDevice() = default;
  virtual void read(uint64_t offset, std::span<uint8_t> data) = 0;
  virtual void write(uint64_t offset, std::span<const uint8_t> data) = 0;
};

}  // namespace nv::vmm
