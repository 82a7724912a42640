// SPDX-License-Identifier: Apache-2.0
#include "shim/bundle.h"

#include <algorithm>
#include <sstream>

#include "runtime/oci_spec.h"

namespace nv::shim {
namespace {

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string part;
  while (std::getline(in, part, sep)) {
    if (!part.empty()) out.push_back(part);
  }
  return out;
}

}  // namespace

Result<RootfsDirs> rootfsDirs(const std::vector<MountSpec>& mounts, const std::string& bundle,
                              const nlohmann::json& bundle_spec) {
  RootfsDirs dirs;
  if (mounts.empty()) {
    // `ctr run --rootfs DIR`: no snapshot, the spec names the directory.
    std::string root = bundle_spec.value("/root/path"_json_pointer, std::string());
    if (root.empty()) {
      return fail(Errc::kInvalidArgument, "no rootfs mounts and no root.path in config.json");
    }
    if (root[0] != '/') root = bundle + "/" + root;
    dirs.lowerdirs.push_back(root);
    return dirs;
  }
  if (mounts.size() > 1) {
    return fail(Errc::kUnsupported, "rootfs with " + std::to_string(mounts.size()) +
                                        " mounts; only one overlay or bind mount is supported");
  }
  const MountSpec& m = mounts.front();
  if (m.type == "bind" || m.type == "rbind") {
    dirs.lowerdirs.push_back(m.source);
    return dirs;
  }
  if (m.type != "overlay") {
    return fail(Errc::kUnsupported, "rootfs mount type '" + m.type +
                                        "' is not supported (overlay or bind snapshots only)");
  }
  for (const auto& option : m.options) {
    if (option.rfind("lowerdir=", 0) == 0) dirs.lowerdirs = split(option.substr(9), ':');
    if (option.rfind("upperdir=", 0) == 0) dirs.upperdir = option.substr(9);
  }
  if (dirs.lowerdirs.empty()) {
    return fail(Errc::kInvalidArgument, "overlay rootfs mount without lowerdir");
  }
  return dirs;
}

Result<BundleProcess> bundleProcess(const nlohmann::json& bundle_spec, const std::string& task_id,
                                    bool terminal) {
  BundleProcess out;
  try {
    const auto& process = bundle_spec.at("process");
    runtime::ContainerOptions options;
    options.args = process.value("args", std::vector<std::string>{});
    if (options.args.empty()) {
      return fail(Errc::kInvalidArgument, "config.json has no process.args");
    }
    options.env = process.value("env", std::vector<std::string>{});
    options.cwd = process.value("cwd", std::string("/"));
    if (process.contains("user")) {
      const auto& user = process["user"];
      options.user = std::to_string(user.value("uid", 0u)) + ":" +
                     std::to_string(user.value("gid", 0u));
    }
    out.hostname = bundle_spec.value("hostname", std::string());
    if (out.hostname.empty()) out.hostname = task_id.substr(0, 12);
    options.hostname = out.hostname;
    options.terminal = terminal || process.value("terminal", false);
    const auto resources = bundle_spec.value("/linux/resources"_json_pointer, nlohmann::json());
    if (resources.is_object()) {
      auto limit = resources.value("/memory/limit"_json_pointer, int64_t{0});
      if (limit > 0) out.memory_limit_bytes = static_cast<uint64_t>(limit);
      auto quota = resources.value("/cpu/quota"_json_pointer, int64_t{0});
      auto period = resources.value("/cpu/period"_json_pointer, uint64_t{0});
      if (quota > 0 && period > 0) {
        out.cpus = static_cast<double>(quota) / static_cast<double>(period);
      }
      auto pids = resources.value("/pids/limit"_json_pointer, int64_t{0});
      if (pids > 0) options.pids_limit = static_cast<uint64_t>(pids);
    }
    options.memory_limit_bytes = out.memory_limit_bytes;
    options.cpus = out.cpus;
    options.read_only_rootfs = bundle_spec.value("/root/readonly"_json_pointer, false);
    out.command = options.args;
    NV_ASSIGN_OR_RETURN(out.oci_spec, runtime::buildOciSpec({}, options));
  } catch (const nlohmann::json::exception& e) {
    return fail(Errc::kInvalidArgument, std::string("config.json: ") + e.what());
  }
  return out;
}

Result<std::string> execProcessJson(const nlohmann::json& container_spec,
                                    const std::string& process_json, bool terminal) {
  nlohmann::json in = nlohmann::json::parse(process_json, nullptr, /*allow_exceptions=*/false);
  if (in.is_discarded() || !in.is_object()) {
    return fail(Errc::kInvalidArgument, "exec: the process spec is not a JSON object");
  }
  try {
    nlohmann::json process = container_spec.value("process", nlohmann::json::object());
    auto args = in.value("args", std::vector<std::string>{});
    if (args.empty()) return fail(Errc::kInvalidArgument, "exec: the process spec has no args");
    process["args"] = args;
    if (in.contains("env")) process["env"] = in["env"].get<std::vector<std::string>>();
    if (auto cwd = in.value("cwd", std::string()); !cwd.empty()) process["cwd"] = cwd;
    if (in.contains("user") && in["user"].is_object()) {
      process["user"]["uid"] = in["user"].value("uid", 0u);
      process["user"]["gid"] = in["user"].value("gid", 0u);
      if (in["user"].contains("additionalGids")) {
        process["user"]["additionalGids"] = in["user"]["additionalGids"];
      }
    }
    process["terminal"] = terminal || in.value("terminal", false);
    return process.dump();
  } catch (const nlohmann::json::exception& e) {
    return fail(Errc::kInvalidArgument, std::string("exec: process spec: ") + e.what());
  }
}

Result<void> checkUpdateResources(const std::string& type_url, const std::string& value) {
  if (value.empty()) return {};
  nlohmann::json resources = nlohmann::json::parse(value, nullptr, /*allow_exceptions=*/false);
  if (resources.is_discarded() || !resources.is_object()) {
    return fail(Errc::kInvalidArgument,
                "update: resources (" + type_url + ") are not an OCI LinuxResources JSON object");
  }
  bool changes = false;
  for (const auto& [key, v] : resources.items()) {
    if (!v.is_null() && !(v.is_object() && v.empty()) && !(v.is_array() && v.empty())) {
      changes = true;
    }
  }
  if (!changes) return {};
  return fail(Errc::kUnsupported,
              "update: changing a running container's resources is not supported by nanovisor "
              "yet (the guest agent has no update call); recreate the container with new limits");
}

uint64_t vmMemoryMib(uint64_t default_mib, uint64_t memory_limit_bytes) {
  if (memory_limit_bytes == 0) return default_mib;
  return std::max<uint64_t>(default_mib, (memory_limit_bytes >> 20) + 96);
}

}  // namespace nv::shim
