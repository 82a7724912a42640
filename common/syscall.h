// SPDX-License-Identifier: Apache-2.0
// Small helpers around raw syscalls.
#pragma once

#include <cerrno>

namespace nv {

// Calls fn() again while it fails with EINTR; returns its last result.
template <class F>
auto retryOnEintr(F fn) -> decltype(fn()) {
  decltype(fn()) result;
  do {
    result = fn();
  } while (result == -1 && errno == EINTR);
  return result;
}

}  // namespace nv
