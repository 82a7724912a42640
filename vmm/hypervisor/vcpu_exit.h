// SPDX-License-Identifier: Apache-2.0
// VcpuExit: why KVM_RUN returned, as a std::variant the exit handler can visit.
#pragma once

#include <cstdint>
#include <span>
#include <variant>

namespace nv::vmm::exit {

// Port read: fill `data` (it points into the kvm_run page; read back on the next run).
struct IoIn {
  uint16_t port;
  std::span<uint8_t> data;
};
struct IoOut {
  uint16_t port;
  std::span<const uint8_t> data;
};
struct MmioRead {
  uint64_t addr;
  std::span<uint8_t> data;
};
struct MmioWrite {
  uint64_t addr;
  std::span<const uint8_t> data;
};
struct Hlt {};
struct Shutdown {};  // triple fault
struct SystemEvent {
  uint32_t type;  // 1 shutdown, 2 reset, 3 crash
};
struct Interrupted {};  // a signal / immediate_exit kicked us out
struct InternalError {
  uint32_t suberror;
};
struct FailEntry {
  uint64_t reason;
};
struct Unknown {
  uint32_t reason;
};

}  // namespace nv::vmm::exit

namespace nv::vmm {
using VcpuExit =
    std::variant<exit::IoIn, exit::IoOut, exit::MmioRead, exit::MmioWrite, exit::Hlt,
                 exit::Shutdown, exit::SystemEvent, exit::Interrupted, exit::InternalError,
                 exit::FailEntry, exit::Unknown>;
}  // namespace nv::vmm
