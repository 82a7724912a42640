// SPDX-License-Identifier: Apache-2.0
// PID 1 duties of the agent in the guest: early mounts, boot options, finding the host
// channel, and rebooting (never exiting) on a fatal error.
#pragma once

#include <string>

#include "agent/boot_options.h"
#include "common/result.h"
#include "common/unique_fd.h"

namespace nv::agent {

inline constexpr const char* kAgentPortName = "io.nanovisor.agent";

// The initramfs root cannot be pivot_root'ed away from (containers need that): when / is
// the initial ramfs, mounts a fresh tmpfs, moves it over / and chroots into it. The agent
// keeps running from the initramfs (no copy, no re-exec: both cost ~0.1 s each under TCG);
// its children re-exec it through /proc/self/exe.
[[nodiscard]] Result<void> switchToTmpfsRoot();

// Mounts proc, sys, devtmpfs, cgroup2 (with cpu/memory/pids/io delegated), /run and /tmp,
// and makes sure fds 0-2 are open. Failures of the optional mounts are logged, not fatal.
[[nodiscard]] Result<void> mountEarlyFilesystems();

// Options from /proc/cmdline.
[[nodiscard]] BootOptions readBootOptions();

// The /dev node of the virtio-serial port named `name` (from
// /sys/class/virtio-ports/vport*/name), waiting up to `timeout_ms` for it to appear.
[[nodiscard]] Result<std::string> findSerialPort(const std::string& name, int timeout_ms,
                                                 const std::string& sys_dir =
                                                     "/sys/class/virtio-ports");

// A listening AF_VSOCK socket on `port` (any CID).
[[nodiscard]] Result<UniqueFd> listenVsock(unsigned port);

// A listening Unix socket at `path` (host mode); an existing socket file is replaced.
[[nodiscard]] Result<UniqueFd> listenUnix(const std::string& path);

// Writes "nanovisor-agent: <message>" to /dev/kmsg (the guest's console log).
void logToKmsg(const std::string& message);

// PID 1 must not exit (the kernel panics): log and reboot, which with -no-reboot ends the VM.
[[noreturn]] void fatalReboot(const std::string& message);

}  // namespace nv::agent
