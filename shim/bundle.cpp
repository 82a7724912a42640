// SPDX-License-Identifier: Apache-2.0
#include "shim/bundle.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
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

bool isBind(const nlohmann::json& mount) {
  const auto options = mount.value("options", std::vector<std::string>{});
  return mount.value("type", "") == "bind" ||
         std::find_if(options.begin(), options.end(), [](const std::string& o) {
           return o == "bind" || o == "rbind";
         }) != options.end();
}

bool hasOption(const nlohmann::json& mount, const char* option) {
  const auto options = mount.value("options", std::vector<std::string>{});
  return std::find(options.begin(), options.end(), option) != options.end();
}

// Reads a regular file of at most `limit` bytes.
Result<std::string> readBounded(const std::filesystem::path& path, uintmax_t limit,
                                const std::string& too_large) {
  std::error_code ec;
  const uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec) return fail(Errc::kUnavailable, "cannot read " + path.string() + ": " + ec.message());
  if (size > limit) return fail(Errc::kTooLarge, too_large);
  std::ifstream in(path, std::ios::binary);
  std::string data;
  data.resize(static_cast<size_t>(size));
  if (!in.read(data.data(), static_cast<std::streamsize>(size))) {
    return fail(Errc::kUnavailable, "cannot read " + path.string());
  }
  return data;
}

// One secret volume's files, below `dir` (a real path inside `root`), as `prefix`/<name>.
Result<void> readSecretDir(const std::filesystem::path& root, const std::filesystem::path& dir,
                           const std::string& prefix, int depth, size_t& total,
                           runtime::SecretVolumeConfig& out) {
  std::error_code ec;
  std::vector<std::filesystem::path> entries;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    entries.push_back(entry.path());
  }
  if (ec) return fail(Errc::kUnavailable, "cannot list " + dir.string() + ": " + ec.message());
  std::sort(entries.begin(), entries.end());
  for (const auto& path : entries) {
    const std::string name = path.filename().string();
    if (name.rfind("..", 0) == 0) continue;  // kubelet's ..data and ..<timestamp>
    const auto real = std::filesystem::canonical(path, ec);
    if (ec) return fail(Errc::kUnavailable, "cannot resolve " + path.string() + ": " + ec.message());
    const auto [r, p] = std::mismatch(root.begin(), root.end(), real.begin(), real.end());
    if (r != root.end()) {
      return fail(Errc::kInvalidArgument,
                  "secret volume " + root.string() + ": " + name + " links out of the volume");
    }
    const std::string relative = prefix.empty() ? name : prefix + "/" + name;
    if (std::filesystem::is_directory(real, ec)) {
      if (depth == 8) {
        return fail(Errc::kInvalidArgument,
                    "secret volume " + root.string() + ": paths deeper than 8 names");
      }
      NV_TRY(readSecretDir(root, real, relative, depth + 1, total, out));
      continue;
    }
    if (!std::filesystem::is_regular_file(real, ec)) continue;
    if (out.files.size() == runtime::kMaxSecretFiles) {
      return fail(Errc::kTooLarge, "secret volume " + root.string() + " has more than " +
                                       std::to_string(runtime::kMaxSecretFiles) + " files");
    }
    NV_ASSIGN_OR_RETURN(std::string data,
                        readBounded(real, runtime::kMaxSecretBytes,
                                    "secret volume file " + path.string() + " is over 1 MiB"));
    total += data.size();
    if (total > runtime::kMaxSecretsTotalBytes) {
      return fail(Errc::kTooLarge, "secret volumes of the container are over 3 MiB in all");
    }
    const auto mode = static_cast<uint32_t>(std::filesystem::status(real, ec).permissions() &
                                            std::filesystem::perms::all);
    out.files.push_back({.name = relative, .data = std::move(data), .mode = mode & 0444u});
  }
  return {};
}

bool isSecretVolume(const std::string& source) {
  return source.find("/volumes/kubernetes.io~secret/") != std::string::npos ||
         source.find("/volumes/kubernetes.io~projected/") != std::string::npos;
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

namespace {

std::string annotation(const nlohmann::json& bundle_spec, const char* key) {
  const auto annotations = bundle_spec.value("annotations", nlohmann::json::object());
  if (!annotations.is_object()) return {};
  auto it = annotations.find(key);
  return it != annotations.end() && it->is_string() ? it->get<std::string>() : std::string();
}

uint64_t annotationNumber(const nlohmann::json& bundle_spec, const char* key) {
  const std::string text = annotation(bundle_spec, key);
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && end == text.data() + text.size() ? value : 0;
}

}  // namespace

PodRole podRole(const nlohmann::json& bundle_spec, const std::string& task_id) {
  const std::string type = annotation(bundle_spec, "io.kubernetes.cri.container-type");
  const std::string sandbox_id = annotation(bundle_spec, "io.kubernetes.cri.sandbox-id");
  PodRole role;
  if (type == "sandbox") {
    role.sandbox = true;
  } else if (type == "container" && !sandbox_id.empty() && sandbox_id != task_id) {
    role.sandbox_id = sandbox_id;
  }
  return role;
}

std::string shimGroup(const nlohmann::json& bundle_spec, const std::string& task_id) {
  const PodRole role = podRole(bundle_spec, task_id);
  return role.member() ? role.sandbox_id : task_id;
}

PodResources podResources(const nlohmann::json& bundle_spec) {
  PodResources out;
  out.memory_limit_bytes = annotationNumber(bundle_spec, "io.kubernetes.cri.sandbox-memory");
  const uint64_t quota = annotationNumber(bundle_spec, "io.kubernetes.cri.sandbox-cpu-quota");
  const uint64_t period = annotationNumber(bundle_spec, "io.kubernetes.cri.sandbox-cpu-period");
  if (quota > 0 && period > 0) out.cpus = static_cast<double>(quota) / static_cast<double>(period);
  return out;
}

Result<DiskRateLimit> diskRateLimit(const nlohmann::json& bundle_spec) {
  return parseDiskRateLimit(annotation(bundle_spec, "io.nanovisor.disk-bps"),
                            "annotation io.nanovisor.disk-bps",
                            annotation(bundle_spec, "io.nanovisor.disk-iops"),
                            "annotation io.nanovisor.disk-iops");
}

void joinPodNamespaces(const nlohmann::json& bundle_spec, nlohmann::json& oci_spec) {
  const auto joined = bundle_spec.value("/linux/namespaces"_json_pointer, nlohmann::json());
  if (!joined.is_array()) return;
  auto& namespaces = oci_spec["linux"]["namespaces"];
  for (const auto& ns : joined) {
    if (!ns.is_object()) continue;
    const std::string type = ns.value("type", "");
    const std::string path = ns.value("path", "");
    if (path.empty() || (type != "pid" && type != "ipc" && type != "uts" && type != "network")) {
      continue;
    }
    bool replaced = false;
    for (auto& own : namespaces) {
      if (own.value("type", "") == type) {
        own["path"] = path;
        replaced = true;
      }
    }
    if (!replaced) namespaces.push_back({{"type", type}, {"path", path}});
  }
}

Result<std::vector<runtime::FileConfig>> bindFileCopies(const nlohmann::json& bundle_spec) {
  constexpr uintmax_t kMaxBytes = 64 << 10;
  std::vector<runtime::FileConfig> out;
  const auto mounts = bundle_spec.value("mounts", nlohmann::json::array());
  if (!mounts.is_array()) return out;
  for (const auto& m : mounts) {
    if (!m.is_object() || !isBind(m)) continue;
    const std::string source = m.value("source", "");
    std::error_code ec;
    if (source.empty() || !std::filesystem::is_regular_file(source, ec)) continue;
    NV_ASSIGN_OR_RETURN(std::string data,
                        readBounded(source, kMaxBytes,
                                    "bind mount of " + source +
                                        ": only files up to 64 KiB are copied into the VM"));
    out.push_back({.destination = m.value("destination", ""),
                   .data = std::move(data),
                   .read_only = hasOption(m, "ro")});
  }
  return out;
}

Result<std::vector<runtime::SecretVolumeConfig>> secretVolumes(const nlohmann::json& bundle_spec) {
  std::vector<runtime::SecretVolumeConfig> out;
  const auto mounts = bundle_spec.value("mounts", nlohmann::json::array());
  if (!mounts.is_array()) return out;
  size_t total = 0;
  for (const auto& m : mounts) {
    if (!m.is_object() || !isBind(m)) continue;
    const std::string source = m.value("source", "");
    if (!isSecretVolume(source)) continue;
    std::error_code ec;
    const auto root = std::filesystem::canonical(source, ec);
    if (ec || !std::filesystem::is_directory(root, ec)) {
      return fail(Errc::kNotFound, "secret volume " + source + " is not a readable directory");
    }
    runtime::SecretVolumeConfig volume{.destination = m.value("destination", ""), .files = {}};
    if (auto read = readSecretDir(root, root, "", 1, total, volume); !read) {
      runtime::wipeSecrets(out);
      runtime::wipeSecrets(volume.files);
      return tl::unexpected(read.error());
    }
    out.push_back(std::move(volume));
  }
  return out;
}

uint64_t vmMemoryMib(uint64_t default_mib, uint64_t memory_limit_bytes) {
  if (memory_limit_bytes == 0) return default_mib;
  return std::max<uint64_t>(default_mib, (memory_limit_bytes >> 20) + 96);
}

}  // namespace nv::shim
