// SPDX-License-Identifier: Apache-2.0
// RuntimeConfig: settings shared by the CLI and the shim, from /etc/nanovisor/config.toml
// (path overridable), then environment, then flags. Documented in docs/configuration.md.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "common/result.h"

namespace nv::runtime {

struct RuntimeConfig {
  std::string hypervisor = "auto";           // auto | builtin | qemu | libvirt
  std::filesystem::path kernel;              // vmlinux; default <prefix>/share/nanovisor/vmlinux
  std::filesystem::path initramfs;           // default <prefix>/share/nanovisor/initramfs.cpio.gz
  uint32_t cpus = 1;
  uint64_t memory_mib = 256;
  std::string log_level;                     // empty: NANOVISOR_LOG or warn
  std::filesystem::path state_dir = "/run/nanovisor";
  std::filesystem::path image_root = "/var/lib/nanovisor";
  std::filesystem::path policy = "/etc/nanovisor/policy.json";
  std::string libvirt_uri = "qemu:///system";
  std::string qemu_binary = "qemu-system-x86_64";
  std::filesystem::path vmm_binary;          // default <prefix>/bin/nanovisor-vmm
  uint32_t agent_timeout_ms = 30000;         // boot + agent handshake deadline
  // The VMM jail (docs/security.md): QEMU or nanovisor-vmm in its own namespaces and
  // pivot_root'ed tmpfs, as an unprivileged per-sandbox uid without capabilities. Turn off only
  // where it cannot work (not root, a QEMU that needs files outside /usr).
  bool jail = true;
  // The VMM's per-sandbox host cgroup (memory = guest + overhead, pids, cpu from --cpus; v1 and
  // v2, runtime/cgroup.h). Turn off where the caller may not create cgroups.
  bool cgroups = true;

  // Defaults with paths relative to the running binary's install prefix, then the TOML file
  // at `path` when it exists (a missing default file is fine; a missing explicit one is not),
  // then NANOVISOR_* environment overrides (NANOVISOR_STATE_DIR, NANOVISOR_IMAGE_ROOT,
  // NANOVISOR_KERNEL, NANOVISOR_INITRAMFS, NANOVISOR_HYPERVISOR).
  [[nodiscard]] static Result<RuntimeConfig> load(const std::filesystem::path& path,
                                                  bool path_is_explicit);
  // Parses TOML text over the current values (unit-tested without files).
  [[nodiscard]] Result<void> applyToml(std::string_view text, const std::string& origin);
  [[nodiscard]] Result<void> validate() const;
};

// The install prefix of the running binary: the parent of the directory holding it
// (build/bin/nanovisor -> build/).
[[nodiscard]] std::filesystem::path installPrefix();

inline constexpr const char* kDefaultConfigPath = "/etc/nanovisor/config.toml";

}  // namespace nv::runtime
