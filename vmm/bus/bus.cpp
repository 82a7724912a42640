// SPDX-License-Identifier: Apache-2.0
// PIO/MMIO range map.
#include "vmm/bus/bus.h"

#include <fmt/format.h>

#include <algorithm>

namespace nv::vmm {

Result<void> Bus::insert(std::shared_ptr<BusDevice> device, uint64_t base, uint64_t len) {
  uint64_t end = 0;
  if (len == 0 || __builtin_add_overflow(base, len, &end) || !device) {
    return fail(Errc::kInvalidArgument, fmt::format("bad bus window {:#x}+{:#x}", base, len));
  }
  auto next = windows_.lower_bound(base);
  if (next != windows_.end() && next->first < end) {
    return fail(Errc::kAlreadyExists, fmt::format("bus window {:#x}+{:#x} overlaps {:#x}", base,
                                                  len, next->first));
  }
  if (next != windows_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second.len > base) {
      return fail(Errc::kAlreadyExists, fmt::format("bus window {:#x}+{:#x} overlaps {:#x}", base,
                                                    len, prev->first));
    }
  }
  windows_.emplace(base, Window{len, std::move(device)});
  return {};
}

const Bus::Window* Bus::find(uint64_t addr, uint64_t size, uint64_t* offset) const {
  auto it = windows_.upper_bound(addr);
  if (it == windows_.begin()) {
    return nullptr;
  }
  --it;
  uint64_t off = addr - it->first;
  // Bounds: the access must lie entirely inside the window.
  if (off >= it->second.len || size > it->second.len - off) {
    return nullptr;
  }
  *offset = off;
  return &it->second;
}

bool Bus::read(uint64_t addr, std::span<uint8_t> data) const {
  std::fill(data.begin(), data.end(), uint8_t{0});
  uint64_t offset = 0;
  const Window* window = find(addr, data.size(), &offset);
  if (window == nullptr) {
    return false;
  }
  window->device->read(offset, data);
  return true;
}

bool Bus::write(uint64_t addr, std::span<const uint8_t> data) const {
  uint64_t offset = 0;
  const Window* window = find(addr, data.size(), &offset);
  if (window == nullptr) {
    return false;
  }
  window->device->write(offset, data);
  return true;
}

}  // namespace nv::vmm
