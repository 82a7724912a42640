// SPDX-License-Identifier: Apache-2.0
#include "runtime/state.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/unique_fd.h"

namespace nv::runtime {
namespace {

constexpr size_t kMaxStateFile = 1 << 20;

nlohmann::json toJson(const SandboxState& s) {
  return {{"id", s.id},           {"image", s.image},        {"command", s.command},
          {"status", s.status},   {"exit_code", s.exit_code}, {"error", s.error},
          {"driver", s.driver},   {"owner_pid", s.owner_pid}, {"vmm_pid", s.vmm_pid},
          {"cpus", s.cpus},       {"memory_mib", s.memory_mib},
          {"disk_bps", s.disk_bps}, {"disk_iops", s.disk_iops},
          {"auto_remove", s.auto_remove}, {"created_unix", s.created_unix},
          {"finished_unix", s.finished_unix}};
}

Result<SandboxState> fromJson(const nlohmann::json& j, const std::string& origin) {
  SandboxState s;
  try {
    s.id = j.at("id").get<std::string>();
    s.image = j.value("image", "");
    s.command = j.value("command", std::vector<std::string>{});
    s.status = j.at("status").get<std::string>();
    s.exit_code = j.value("exit_code", -1);
    s.error = j.value("error", "");
    s.driver = j.value("driver", "");
    s.owner_pid = j.value("owner_pid", 0);
    s.vmm_pid = j.value("vmm_pid", 0);
    s.cpus = j.value("cpus", 1u);
    s.memory_mib = j.value("memory_mib", uint64_t{256});
    s.disk_bps = j.value("disk_bps", "");
    s.disk_iops = j.value("disk_iops", "");
    s.auto_remove = j.value("auto_remove", false);
    s.created_unix = j.value("created_unix", int64_t{0});
    s.finished_unix = j.value("finished_unix", int64_t{0});
  } catch (const nlohmann::json::exception& e) {
    return fail(Errc::kInvalidArgument, origin + ": " + e.what());
  }
  return s;
}

}  // namespace

std::string SandboxState::liveStatus() const {
  if ((status == "running" || status == "creating") && owner_pid > 0 &&
      ::kill(owner_pid, 0) != 0 && errno == ESRCH) {
    return "dead";
  }
  return status;
}

std::string newSandboxId() {
  std::random_device rd;
  std::uniform_int_distribution<unsigned> nibble(0, 15);
  std::string id;
  for (int i = 0; i < 12; ++i) id += "0123456789abcdef"[nibble(rd)];
  return id;
}

Result<std::filesystem::path> StateStore::create(const std::string& id) const {
  std::error_code ec;
  std::filesystem::create_directories(root_, ec);
  if (ec) return failErrno(ec.value(), "create state root " + root_.string());
  auto path = dir(id);
  if (::mkdir(path.c_str(), 0700) != 0) {
    if (errno == EEXIST) {
      return fail(Errc::kAlreadyExists, "a sandbox named '" + id + "' already exists");
    }
    return failErrno("mkdir " + path.string());
  }
  return path;
}

Result<void> StateStore::save(const SandboxState& state) const {
  auto final_path = dir(state.id) / "state.json";
  auto tmp_path = dir(state.id) / ".state.json.tmp";
  std::string text = toJson(state).dump(2) + "\n";
  UniqueFd fd(::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd) return failErrno("write " + tmp_path.string());
  if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    return failErrno("write " + tmp_path.string());
  }
  fd.reset();
  if (::rename(tmp_path.c_str(), final_path.c_str()) != 0) {
    return failErrno("rename " + final_path.string());
  }
  return {};
}

Result<SandboxState> StateStore::load(const std::string& id) const {
  auto path = dir(id) / "state.json";
  std::ifstream in(path);
  if (!in) return fail(Errc::kNotFound, "no sandbox '" + id + "'");
  std::stringstream text;
  text << in.rdbuf();
  if (text.str().size() > kMaxStateFile) return fail(Errc::kTooLarge, path.string() + " too large");
  auto j = nlohmann::json::parse(text.str(), nullptr, false);
  if (j.is_discarded()) return fail(Errc::kInvalidArgument, path.string() + ": not JSON");
  return fromJson(j, path.string());
}

Result<std::vector<SandboxState>> StateStore::list() const {
  std::vector<SandboxState> out;
  std::error_code ec;
  if (!std::filesystem::exists(root_, ec)) return out;
  for (const auto& entry : std::filesystem::directory_iterator(root_, ec)) {
    if (!entry.is_directory()) continue;
    if (auto s = load(entry.path().filename().string())) out.push_back(std::move(*s));
  }
  if (ec) return failErrno(ec.value(), "list " + root_.string());
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.created_unix < b.created_unix; });
  return out;
}

Result<void> StateStore::remove(const std::string& id) const {
  std::error_code ec;
  std::filesystem::remove_all(dir(id), ec);
  if (ec) return failErrno(ec.value(), "remove " + dir(id).string());
  return {};
}

Result<std::string> StateStore::resolve(const std::string& prefix) const {
  if (prefix.empty()) return fail(Errc::kInvalidArgument, "empty sandbox id");
  if (std::filesystem::exists(dir(prefix) / "state.json")) return prefix;
  NV_ASSIGN_OR_RETURN(auto all, list());
  std::string match;
  for (const auto& s : all) {
    if (s.id.rfind(prefix, 0) == 0) {
      if (!match.empty()) {
        return fail(Errc::kInvalidArgument, "'" + prefix + "' matches more than one sandbox");
      }
      match = s.id;
    }
  }
  if (match.empty()) return fail(Errc::kNotFound, "no sandbox '" + prefix + "'");
  return match;
}

}  // namespace nv::runtime
