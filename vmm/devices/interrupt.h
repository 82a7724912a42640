// SPDX-License-Identifier: Apache-2.0
// IrqLine: how a device raises its interrupt (irqfd on KVM, a counter in tests).
#pragma once

namespace nv::vmm {

// An edge-triggered interrupt line into the guest's interrupt controller. Thread-safe.
class IrqLine {
 public:
  virtual ~IrqLine() = default;
  virtual void trigger() = 0;
};

}  // namespace nv::vmm
