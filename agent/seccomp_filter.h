// SPDX-License-Identifier: Apache-2.0
// Translates an OCI linux.seccomp profile into a libseccomp filter.
#pragma once

#include <cstdint>
#include <vector>

#include "agent/oci_spec.h"
#include "common/result.h"

namespace nv::agent {

// Compiles the profile for the native architecture and returns the BPF program bytes
// (struct sock_filter[]). Unknown syscall names are skipped (as runc does, since profiles
// name syscalls of other kernels); unknown actions or operators are errors.
[[nodiscard]] Result<std::vector<uint8_t>> compileSeccomp(const SeccompSpec& profile);

// Compiles and loads the profile into the calling thread (needs no_new_privs or
// CAP_SYS_ADMIN). Called in the container process right before execve.
[[nodiscard]] Result<void> loadSeccomp(const SeccompSpec& profile);

}  // namespace nv::agent
