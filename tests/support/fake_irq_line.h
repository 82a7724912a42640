// SPDX-License-Identifier: Apache-2.0
// FakeIrqLine: counts interrupts raised by a device under test.
#pragma once

#include <atomic>

#include "vmm/devices/interrupt.h"

namespace nv::vmm::testing {

class FakeIrqLine final : public IrqLine {
 public:
  void trigger() override { ++count; }
  std::atomic<int> count{0};
};

}  // namespace nv::vmm::testing
