// SPDX-License-Identifier: Apache-2.0
// Parses and validates the OCI runtime spec subset the agent applies.
#include "agent/oci_spec.h"

#include <sched.h>
#include <sys/mount.h>
#include <sys/resource.h>

#include <array>
#include <limits>

#include <nlohmann/json.hpp>

namespace nv::agent {
namespace {

using Json = nlohmann::json;

Unexpected bad(const std::string& field, std::string_view what) {
  return fail(Errc::kInvalidArgument, "OCI spec: " + field + ": " + std::string(what));
}

constexpr std::array<std::string_view, 41> kCapNames = {
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID",
    "SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST",
    "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO",
    "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
    "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE",
    "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM",
    "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE"};

struct NamedInt {
  std::string_view name;
  int value;
};
constexpr std::array<NamedInt, 16> kRlimits = {{
    {"AS", RLIMIT_AS}, {"CORE", RLIMIT_CORE}, {"CPU", RLIMIT_CPU}, {"DATA", RLIMIT_DATA},
    {"FSIZE", RLIMIT_FSIZE}, {"LOCKS", RLIMIT_LOCKS}, {"MEMLOCK", RLIMIT_MEMLOCK},
    {"MSGQUEUE", RLIMIT_MSGQUEUE}, {"NICE", RLIMIT_NICE}, {"NOFILE", RLIMIT_NOFILE},
    {"NPROC", RLIMIT_NPROC}, {"RSS", RLIMIT_RSS}, {"RTPRIO", RLIMIT_RTPRIO},
    {"RTTIME", RLIMIT_RTTIME}, {"SIGPENDING", RLIMIT_SIGPENDING}, {"STACK", RLIMIT_STACK},
}};

constexpr std::array<NamedInt, 7> kNamespaces = {{
    {"pid", CLONE_NEWPID}, {"network", CLONE_NEWNET}, {"mount", CLONE_NEWNS},
    {"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS}, {"cgroup", CLONE_NEWCGROUP},
    {"user", CLONE_NEWUSER},
}};

Result<std::string> getString(const Json& obj, const char* key, const std::string& field,
                              bool required = false) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    if (required) {
      return bad(field + "." + key, "missing");
    }
    return std::string();
  }
  if (!it->is_string()) {
    return bad(field + "." + key, "must be a string");
  }
  return it->get<std::string>();
}

Result<std::vector<std::string>> getStrings(const Json& obj, const char* key,
                                            const std::string& field) {
  std::vector<std::string> out;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    return out;
  }
  if (!it->is_array()) {
    return bad(field + "." + key, "must be an array of strings");
  }
  for (const auto& v : *it) {
    if (!v.is_string()) {
      return bad(field + "." + key, "must be an array of strings");
    }
    out.push_back(v.get<std::string>());
  }
  return out;
}

template <class T>
Result<std::optional<T>> getInt(const Json& obj, const char* key, const std::string& field) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    return std::optional<T>();
  }
  if (it->is_number_unsigned()) {
    auto v = it->get<uint64_t>();
    if (v > static_cast<uint64_t>(std::numeric_limits<T>::max())) {
      return bad(field + "." + key, "out of range");
    }
    return std::optional<T>(static_cast<T>(v));
  }
  if (it->is_number_integer()) {
    auto v = it->get<int64_t>();
    if constexpr (std::is_unsigned_v<T>) {
      if (v < 0) {
        return bad(field + "." + key, "must not be negative");
      }
      if (static_cast<uint64_t>(v) > std::numeric_limits<T>::max()) {
        return bad(field + "." + key, "out of range");
      }
    } else {
      if (v < std::numeric_limits<T>::min() || v > std::numeric_limits<T>::max()) {
        return bad(field + "." + key, "out of range");
      }
    }
    return std::optional<T>(static_cast<T>(v));
  }
  return bad(field + "." + key, "must be an integer");
}

Result<bool> getBool(const Json& obj, const char* key, const std::string& field) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    return false;
  }
  if (!it->is_boolean()) {
    return bad(field + "." + key, "must be a boolean");
  }
  return it->get<bool>();
}

Result<std::vector<int>> getCaps(const Json& obj, const char* key, const std::string& field) {
  NV_ASSIGN_OR_RETURN(auto names, getStrings(obj, key, field));
  std::vector<int> out;
  for (const auto& name : names) {
    auto cap = capabilityFromName(name);
    if (!cap) {
      return bad(field + "." + key, "unknown capability " + name);
    }
    out.push_back(*cap);
  }
  return out;
}

Result<ProcessSpec> processFromJson(const Json& p, const std::string& field) {
  if (!p.is_object()) {
    return bad(field, "must be an object");
  }
  ProcessSpec out;
  NV_ASSIGN_OR_RETURN(out.args, getStrings(p, "args", field));
  if (out.args.empty() || out.args[0].empty()) {
    return bad(field + ".args", "must be a non-empty array of strings");
  }
  NV_ASSIGN_OR_RETURN(out.env, getStrings(p, "env", field));
  for (const auto& e : out.env) {
    if (e.find('=') == std::string::npos || e.front() == '=') {
      return bad(field + ".env", "entry \"" + e + "\" is not KEY=VALUE");
    }
  }
  NV_ASSIGN_OR_RETURN(out.cwd, getString(p, "cwd", field));
  if (out.cwd.empty()) {
    out.cwd = "/";
  }
  if (out.cwd.front() != '/') {
    return bad(field + ".cwd", "must be an absolute path");
  }
  NV_ASSIGN_OR_RETURN(out.terminal, getBool(p, "terminal", field));
  NV_ASSIGN_OR_RETURN(out.no_new_privileges, getBool(p, "noNewPrivileges", field));
  if (auto it = p.find("consoleSize"); it != p.end() && it->is_object()) {
    NV_ASSIGN_OR_RETURN(auto h, getInt<uint16_t>(*it, "height", field + ".consoleSize"));
    NV_ASSIGN_OR_RETURN(auto w, getInt<uint16_t>(*it, "width", field + ".consoleSize"));
    out.console_rows = h.value_or(0);
    out.console_columns = w.value_or(0);
  }
  if (auto it = p.find("user"); it != p.end() && !it->is_null()) {
    if (!it->is_object()) {
      return bad(field + ".user", "must be an object");
    }
    const std::string uf = field + ".user";
    NV_ASSIGN_OR_RETURN(auto uid, getInt<uint32_t>(*it, "uid", uf));
    NV_ASSIGN_OR_RETURN(auto gid, getInt<uint32_t>(*it, "gid", uf));
    out.user.uid = uid.value_or(0);
    out.user.gid = gid.value_or(0);
    NV_ASSIGN_OR_RETURN(out.user.username, getString(*it, "username", uf));
    if (auto g = it->find("additionalGids"); g != it->end() && !g->is_null()) {
      if (!g->is_array()) {
        return bad(uf + ".additionalGids", "must be an array of integers");
      }
      for (const auto& v : *g) {
        if (!v.is_number_unsigned() || v.get<uint64_t>() > std::numeric_limits<uint32_t>::max()) {
          return bad(uf + ".additionalGids", "must be an array of integers");
        }
        out.user.additional_gids.push_back(v.get<uint32_t>());
      }
    }
  }
  if (auto it = p.find("capabilities"); it != p.end() && !it->is_null()) {
    if (!it->is_object()) {
      return bad(field + ".capabilities", "must be an object");
    }
    const std::string cf = field + ".capabilities";
    CapabilitiesSpec caps;
    NV_ASSIGN_OR_RETURN(caps.bounding, getCaps(*it, "bounding", cf));
    NV_ASSIGN_OR_RETURN(caps.effective, getCaps(*it, "effective", cf));
    NV_ASSIGN_OR_RETURN(caps.inheritable, getCaps(*it, "inheritable", cf));
    NV_ASSIGN_OR_RETURN(caps.permitted, getCaps(*it, "permitted", cf));
    NV_ASSIGN_OR_RETURN(caps.ambient, getCaps(*it, "ambient", cf));
    out.capabilities = std::move(caps);
  }
  if (auto it = p.find("rlimits"); it != p.end() && !it->is_null()) {
    if (!it->is_array()) {
      return bad(field + ".rlimits", "must be an array");
    }
    for (const auto& r : *it) {
      if (!r.is_object()) {
        return bad(field + ".rlimits", "entries must be objects");
      }
      const std::string rf = field + ".rlimits";
      NV_ASSIGN_OR_RETURN(auto type, getString(r, "type", rf, true));
      auto resource = rlimitFromName(type);
      if (!resource) {
        return bad(rf, "unknown rlimit " + type);
      }
      NV_ASSIGN_OR_RETURN(auto soft, getInt<uint64_t>(r, "soft", rf));
      NV_ASSIGN_OR_RETURN(auto hard, getInt<uint64_t>(r, "hard", rf));
      if (!soft || !hard || *soft > *hard) {
        return bad(rf, type + ": needs soft <= hard");
      }
      out.rlimits.push_back({*resource, *soft, *hard});
    }
  }
  return out;
}

Result<SeccompSpec> seccompFromJson(const Json& s) {
  const std::string f = "linux.seccomp";
  if (!s.is_object()) {
    return bad(f, "must be an object");
  }
  SeccompSpec out;
  NV_ASSIGN_OR_RETURN(out.default_action, getString(s, "defaultAction", f, true));
  NV_ASSIGN_OR_RETURN(out.default_errno_ret, getInt<uint32_t>(s, "defaultErrnoRet", f));
  auto it = s.find("syscalls");
  if (it == s.end() || it->is_null()) {
    return out;
  }
  if (!it->is_array()) {
    return bad(f + ".syscalls", "must be an array");
  }
  for (const auto& entry : *it) {
    if (!entry.is_object()) {
      return bad(f + ".syscalls", "entries must be objects");
    }
    const std::string ef = f + ".syscalls";
    SeccompSyscallSpec rule;
    NV_ASSIGN_OR_RETURN(rule.names, getStrings(entry, "names", ef));
    NV_ASSIGN_OR_RETURN(rule.action, getString(entry, "action", ef, true));
    NV_ASSIGN_OR_RETURN(rule.errno_ret, getInt<uint32_t>(entry, "errnoRet", ef));
    if (auto a = entry.find("args"); a != entry.end() && !a->is_null()) {
      if (!a->is_array()) {
        return bad(ef + ".args", "must be an array");
      }
      for (const auto& arg : *a) {
        if (!arg.is_object()) {
          return bad(ef + ".args", "entries must be objects");
        }
        SeccompArgSpec as;
        NV_ASSIGN_OR_RETURN(auto index, getInt<uint32_t>(arg, "index", ef + ".args"));
        NV_ASSIGN_OR_RETURN(auto value, getInt<uint64_t>(arg, "value", ef + ".args"));
        NV_ASSIGN_OR_RETURN(auto value_two, getInt<uint64_t>(arg, "valueTwo", ef + ".args"));
        NV_ASSIGN_OR_RETURN(as.op, getString(arg, "op", ef + ".args", true));
        if (!index || *index > 5) {
          return bad(ef + ".args.index", "must be 0..5");
        }
        as.index = *index;
        as.value = value.value_or(0);
        as.value_two = value_two.value_or(0);
        rule.args.push_back(std::move(as));
      }
    }
    out.syscalls.push_back(std::move(rule));
  }
  return out;
}

Result<void> linuxFromJson(const Json& l, Spec& spec) {
  if (!l.is_object()) {
    return bad("linux", "must be an object");
  }
  if (auto it = l.find("namespaces"); it != l.end() && !it->is_null()) {
    if (!it->is_array()) {
      return bad("linux.namespaces", "must be an array");
    }
    for (const auto& ns : *it) {
      if (!ns.is_object()) {
        return bad("linux.namespaces", "entries must be objects");
      }
      NV_ASSIGN_OR_RETURN(auto type, getString(ns, "type", "linux.namespaces", true));
      NV_ASSIGN_OR_RETURN(auto path, getString(ns, "path", "linux.namespaces"));
      int flag = 0;
      for (const auto& known : kNamespaces) {
        if (known.name == type) {
          flag = known.value;
        }
      }
      if (flag == 0) {
        return bad("linux.namespaces", "unknown namespace type " + type);
      }
      if (flag == CLONE_NEWUSER) {
        return bad("linux.namespaces", "user namespaces are not supported");
      }
      if (!path.empty()) {
        if (flag == CLONE_NEWNS || flag == CLONE_NEWCGROUP) {
          return bad("linux.namespaces", "joining a " + type + " namespace is not supported");
        }
        spec.join_namespace_flags |= flag;
        continue;
      }
      spec.namespace_flags |= flag;
    }
  }
  if (auto it = l.find("resources"); it != l.end() && !it->is_null()) {
    if (!it->is_object()) {
      return bad("linux.resources", "must be an object");
    }
    if (auto m = it->find("memory"); m != it->end() && m->is_object()) {
      NV_ASSIGN_OR_RETURN(spec.resources.memory_limit,
                          getInt<int64_t>(*m, "limit", "linux.resources.memory"));
    }
    if (auto c = it->find("cpu"); c != it->end() && c->is_object()) {
      NV_ASSIGN_OR_RETURN(spec.resources.cpu_quota,
                          getInt<int64_t>(*c, "quota", "linux.resources.cpu"));
      NV_ASSIGN_OR_RETURN(spec.resources.cpu_period,
                          getInt<uint64_t>(*c, "period", "linux.resources.cpu"));
      NV_ASSIGN_OR_RETURN(spec.resources.cpu_shares,
                          getInt<uint64_t>(*c, "shares", "linux.resources.cpu"));
    }
    if (auto p = it->find("pids"); p != it->end() && p->is_object()) {
      NV_ASSIGN_OR_RETURN(spec.resources.pids_limit,
                          getInt<int64_t>(*p, "limit", "linux.resources.pids"));
    }
  }
  NV_ASSIGN_OR_RETURN(spec.masked_paths, getStrings(l, "maskedPaths", "linux"));
  NV_ASSIGN_OR_RETURN(spec.readonly_paths, getStrings(l, "readonlyPaths", "linux"));
  for (const auto& list : {spec.masked_paths, spec.readonly_paths}) {
    for (const auto& path : list) {
      if (!isCleanAbsolutePath(path)) {
        return bad("linux.maskedPaths/readonlyPaths", "\"" + path + "\" is not a clean absolute path");
      }
    }
  }
  if (auto it = l.find("sysctl"); it != l.end() && !it->is_null()) {
    if (!it->is_object()) {
      return bad("linux.sysctl", "must be an object");
    }
    for (const auto& [key, value] : it->items()) {
      if (!value.is_string() || key.empty() || key.find('/') != std::string::npos ||
          key.find("..") != std::string::npos) {
        return bad("linux.sysctl", "bad entry " + key);
      }
      spec.sysctl[key] = value.get<std::string>();
    }
  }
  if (auto it = l.find("seccomp"); it != l.end() && !it->is_null()) {
    NV_ASSIGN_OR_RETURN(spec.seccomp, seccompFromJson(*it));
  }
  return {};
}

Result<Spec> specFromJson(const Json& doc) {
  if (!doc.is_object()) {
    return bad("(document)", "must be a JSON object");
  }
  Spec spec;
  auto proc = doc.find("process");
  if (proc == doc.end()) {
    return bad("process", "missing");
  }
  NV_ASSIGN_OR_RETURN(spec.process, processFromJson(*proc, "process"));
  if (auto root = doc.find("root"); root != doc.end() && root->is_object()) {
    NV_ASSIGN_OR_RETURN(spec.root_readonly, getBool(*root, "readonly", "root"));
  }
  NV_ASSIGN_OR_RETURN(spec.hostname, getString(doc, "hostname", "(document)"));
  if (spec.hostname.size() > 64) {
    return bad("hostname", "longer than 64 bytes");
  }
  if (auto mounts = doc.find("mounts"); mounts != doc.end() && !mounts->is_null()) {
    if (!mounts->is_array()) {
      return bad("mounts", "must be an array");
    }
    for (const auto& m : *mounts) {
      if (!m.is_object()) {
        return bad("mounts", "entries must be objects");
      }
      MountSpec ms;
      NV_ASSIGN_OR_RETURN(ms.destination, getString(m, "destination", "mounts", true));
      NV_ASSIGN_OR_RETURN(ms.type, getString(m, "type", "mounts"));
      NV_ASSIGN_OR_RETURN(ms.source, getString(m, "source", "mounts"));
      NV_ASSIGN_OR_RETURN(ms.options, getStrings(m, "options", "mounts"));
      if (!isCleanAbsolutePath(ms.destination)) {
        return bad("mounts", "destination \"" + ms.destination + "\" is not a clean absolute path");
      }
      spec.mounts.push_back(std::move(ms));
    }
  }
  if (auto l = doc.find("linux"); l != doc.end() && !l->is_null()) {
    NV_TRY(linuxFromJson(*l, spec));
  }
  return spec;
}

Result<Json> parseJson(std::string_view json) {
  if (json.size() > kMaxSpecBytes) {
    return fail(Errc::kTooLarge, "OCI spec: larger than 1 MiB");
  }
  Json doc = Json::parse(json.begin(), json.end(), nullptr, false);
  if (doc.is_discarded()) {
    return fail(Errc::kInvalidArgument, "OCI spec: not valid JSON");
  }
  return doc;
}

}  // namespace

Result<Spec> parseSpec(std::string_view json) {
  try {
    NV_ASSIGN_OR_RETURN(auto doc, parseJson(json));
    return specFromJson(doc);
  } catch (const std::exception& e) {
    return fail(Errc::kInvalidArgument, std::string("OCI spec: ") + e.what());
  }
}

Result<ProcessSpec> parseProcess(std::string_view json) {
  try {
    NV_ASSIGN_OR_RETURN(auto doc, parseJson(json));
    return processFromJson(doc, "process");
  } catch (const std::exception& e) {
    return fail(Errc::kInvalidArgument, std::string("OCI process: ") + e.what());
  }
}

Result<int> capabilityFromName(std::string_view name) {
  if (name.starts_with("CAP_")) {
    name.remove_prefix(4);
  }
  for (size_t i = 0; i < kCapNames.size(); ++i) {
    if (kCapNames[i] == name) {
      return static_cast<int>(i);
    }
  }
  return fail(Errc::kInvalidArgument, "unknown capability " + std::string(name));
}

Result<int> rlimitFromName(std::string_view name) {
  if (name.starts_with("RLIMIT_")) {
    name.remove_prefix(7);
  }
  for (const auto& r : kRlimits) {
    if (r.name == name) {
      return r.value;
    }
  }
  return fail(Errc::kInvalidArgument, "unknown rlimit " + std::string(name));
}

MountFlags parseMountOptions(const std::vector<std::string>& options) {
  struct Flag {
    std::string_view name;
    bool clear;
    unsigned long value;
  };
  static constexpr std::array<Flag, 22> kFlags = {{
      {"ro", false, MS_RDONLY}, {"rw", true, MS_RDONLY}, {"nosuid", false, MS_NOSUID},
      {"suid", true, MS_NOSUID}, {"nodev", false, MS_NODEV}, {"dev", true, MS_NODEV},
      {"noexec", false, MS_NOEXEC}, {"exec", true, MS_NOEXEC}, {"sync", false, MS_SYNCHRONOUS},
      {"async", true, MS_SYNCHRONOUS}, {"noatime", false, MS_NOATIME},
      {"atime", true, MS_NOATIME}, {"nodiratime", false, MS_NODIRATIME},
      {"diratime", true, MS_NODIRATIME}, {"relatime", false, MS_RELATIME},
      {"norelatime", true, MS_RELATIME}, {"strictatime", false, MS_STRICTATIME},
      {"nostrictatime", true, MS_STRICTATIME}, {"mand", false, MS_MANDLOCK},
      {"nomand", true, MS_MANDLOCK}, {"dirsync", false, MS_DIRSYNC},
      {"remount", false, MS_REMOUNT},
  }};
  static constexpr std::array<NamedInt, 8> kPropagation = {{
      {"private", MS_PRIVATE}, {"rprivate", MS_PRIVATE | MS_REC}, {"slave", MS_SLAVE},
      {"rslave", MS_SLAVE | MS_REC}, {"shared", MS_SHARED}, {"rshared", MS_SHARED | MS_REC},
      {"unbindable", MS_UNBINDABLE}, {"runbindable", MS_UNBINDABLE | MS_REC},
  }};
  MountFlags out;
  for (const auto& opt : options) {
    if (opt == "bind") {
      out.bind = true;
      continue;
    }
    if (opt == "rbind") {
      out.bind = true;
      out.recursive = true;
      continue;
    }
    bool known = false;
    for (const auto& f : kFlags) {
      if (f.name == opt) {
        out.flags = f.clear ? (out.flags & ~f.value) : (out.flags | f.value);
        known = true;
      }
    }
    for (const auto& p : kPropagation) {
      if (p.name == opt) {
        out.propagation = static_cast<unsigned long>(p.value);
        known = true;
      }
    }
    if (!known) {
      if (!out.data.empty()) {
        out.data += ",";
      }
      out.data += opt;
    }
  }
  return out;
}

bool isCleanAbsolutePath(std::string_view path) {
  if (path.empty() || path.front() != '/' || path.find('\0') != std::string_view::npos) {
    return false;
  }
  size_t pos = 1;
  while (pos <= path.size()) {
    size_t next = path.find('/', pos);
    if (next == std::string_view::npos) {
      next = path.size();
    }
    auto part = path.substr(pos, next - pos);
    if (part == "." || part == "..") {
      return false;
    }
    pos = next + 1;
  }
  return true;
}

}  // namespace nv::agent
