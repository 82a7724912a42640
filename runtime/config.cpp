// SPDX-License-Identifier: Apache-2.0
#include "runtime/config.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <toml++/toml.h>

namespace nv::runtime {
namespace {

std::string envOr(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return (v != nullptr && *v != '\0') ? std::string(v) : fallback;
}

}  // namespace

std::filesystem::path installPrefix() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "/usr/local";
  return exe.parent_path().parent_path();
}

Result<void> RuntimeConfig::applyToml(std::string_view text, const std::string& origin) {
  toml::table t;
  try {
    t = toml::parse(text, origin);
  } catch (const toml::parse_error& err) {
    return fail(Errc::kInvalidArgument,
                origin + ":" + std::to_string(err.source().begin.line) + ": " +
                    std::string(err.description()));
  }
  static const char* const kKnown[] = {"hypervisor", "kernel", "initramfs", "cpus", "memory_mib",
                                       "log_level", "state_dir", "image_root", "policy",
                                       "libvirt_uri", "qemu_binary", "vmm_binary",
                                       "agent_timeout_ms", "jail", "cgroups"};
  for (const auto& [key, value] : t) {
    bool known = false;
    for (const char* k : kKnown) known = known || key.str() == k;
    if (!known) {
      return fail(Errc::kInvalidArgument, origin + ": unknown setting '" + std::string(key.str()) + "'");
    }
  }
  auto str = [&](const char* key, auto& field) -> Result<void> {
    if (const toml::node* n = t.get(key)) {
      auto v = n->value<std::string>();
      if (!v) return fail(Errc::kInvalidArgument, origin + ": '" + key + "' must be a string");
      field = *v;
    }
    return {};
  };
  auto num = [&](const char* key, auto& field) -> Result<void> {
    if (const toml::node* n = t.get(key)) {
      auto v = n->value<int64_t>();
      if (!v || *v < 0) {
        return fail(Errc::kInvalidArgument, origin + ": '" + key + "' must be a positive integer");
      }
      field = static_cast<std::remove_reference_t<decltype(field)>>(*v);
    }
    return {};
  };
  NV_TRY(str("hypervisor", hypervisor));
  NV_TRY(str("kernel", kernel));
  NV_TRY(str("initramfs", initramfs));
  NV_TRY(num("cpus", cpus));
  NV_TRY(num("memory_mib", memory_mib));
  NV_TRY(str("log_level", log_level));
  NV_TRY(str("state_dir", state_dir));
  NV_TRY(str("image_root", image_root));
  NV_TRY(str("policy", policy));
  NV_TRY(str("libvirt_uri", libvirt_uri));
  NV_TRY(str("qemu_binary", qemu_binary));
  NV_TRY(str("vmm_binary", vmm_binary));
  NV_TRY(num("agent_timeout_ms", agent_timeout_ms));
  auto boolean = [&](const char* key, bool& field) -> Result<void> {
    if (const toml::node* n = t.get(key)) {
      auto v = n->value<bool>();
      if (!v) return fail(Errc::kInvalidArgument, origin + ": '" + key + "' must be true or false");
      field = *v;
    }
    return {};
  };
  NV_TRY(boolean("jail", jail));
  NV_TRY(boolean("cgroups", cgroups));
  return validate();
}

Result<void> RuntimeConfig::validate() const {
  if (hypervisor != "auto" && hypervisor != "builtin" && hypervisor != "qemu" &&
      hypervisor != "libvirt") {
    return fail(Errc::kInvalidArgument, "hypervisor '" + hypervisor +
                                            "' is not one of auto, builtin, qemu, libvirt");
  }
  if (cpus < 1 || cpus > 32) {
    return fail(Errc::kInvalidArgument, "cpus must be 1..32, got " + std::to_string(cpus));
  }
  if (memory_mib < 64 || memory_mib > 65536) {
    return fail(Errc::kInvalidArgument,
                "memory must be 64 MiB..64 GiB, got " + std::to_string(memory_mib) + " MiB");
  }
  return {};
}

Result<RuntimeConfig> RuntimeConfig::load(const std::filesystem::path& path,
                                          bool path_is_explicit) {
  RuntimeConfig c;
  const auto prefix = installPrefix();
  c.kernel = prefix / "share/nanovisor/vmlinux";
  c.initramfs = prefix / "share/nanovisor/initramfs.cpio.gz";
  c.vmm_binary = prefix / "bin/nanovisor-vmm";
  std::ifstream in(path);
  if (in) {
    std::stringstream text;
    text << in.rdbuf();
    NV_TRY(c.applyToml(text.str(), path.string()));
  } else if (path_is_explicit) {
    return fail(Errc::kNotFound, "config file " + path.string() + " not found");
  }
  c.state_dir = envOr("NANOVISOR_STATE_DIR", c.state_dir);
  c.image_root = envOr("NANOVISOR_IMAGE_ROOT", c.image_root);
  c.kernel = envOr("NANOVISOR_KERNEL", c.kernel);
  c.initramfs = envOr("NANOVISOR_INITRAMFS", c.initramfs);
  c.hypervisor = envOr("NANOVISOR_HYPERVISOR", c.hypervisor);
  NV_TRY(c.validate());
  return c;
}

}  // namespace nv::runtime
