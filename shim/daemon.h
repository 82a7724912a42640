// SPDX-License-Identifier: Apache-2.0
// The shim's process plumbing: `start` (bind the socket, spawn the daemon with it on fd 3,
// write the bundle's `address` file), `delete` (clean up after a shim that is gone) and the
// daemon itself (serve the Task API until Shutdown or SIGTERM).
#pragma once

#include <filesystem>
#include <string>

#include "common/result.h"
#include "common/unique_fd.h"
#include "shim/options.h"

namespace nv::shim {

// The file in a task's bundle that names the EROFS rootfs disk the shim built from that task's
// own snapshot (written by Create): `delete` removes that disk when the shim died before its
// Delete could.
inline constexpr const char* kOwnedRootfsFile = "nanovisor-rootfs";

// Binds and listens on `path` (mode 0600; parent created 0700). A live socket (someone
// accepts) is kAlreadyExists; a stale one left by a crashed shim is replaced.
[[nodiscard]] Result<UniqueFd> bindSocket(const std::string& path);

// Writes `content` to `dir`/`name` atomically (temp file + rename).
[[nodiscard]] Result<void> writeFileAtomic(const std::string& dir, const std::string& name,
                                           const std::string& content);

// Where the shim keeps its sandboxes' state: beside the CLI's state dir, per namespace
// (/run/nanovisor -> /run/nanovisor-shim/<namespace>).
[[nodiscard]] std::filesystem::path sandboxStateDir(const std::filesystem::path& cli_state_dir,
                                                    const std::string& namespace_name);

// `start`: prints the address on stdout; returns the exit status.
int runStart(const ShimArgs& args, const std::string& self_exe);
// `delete`: writes the DeleteResponse bytes on stdout; returns the exit status.
int runDelete(const ShimArgs& args);
// The daemon: serves on fd 3 until Shutdown; returns the exit status.
int runDaemon(const ShimArgs& args);

}  // namespace nv::shim
