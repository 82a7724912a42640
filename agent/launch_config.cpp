// SPDX-License-Identifier: Apache-2.0
// LaunchConfig <-> JSON.
#include "agent/launch_config.h"

#include <nlohmann/json.hpp>

namespace nv::agent {

std::string serializeLaunchConfig(const LaunchConfig& config) {
  nlohmann::json volumes = nlohmann::json::array();
  for (const auto& v : config.volumes) {
    volumes.push_back({{"source", v.source}, {"destination", v.destination},
                       {"readonly", v.readonly}});
  }
  nlohmann::json doc = {
      {"kind", config.kind == LaunchConfig::Kind::kContainer ? "container" : "exec"},
      {"spec", config.spec_json},
      {"rootfs", config.rootfs},
      {"volumes", volumes},
      {"init_pid", config.init_pid},
      {"join_flags", config.join_flags},
      {"clone_flags", config.clone_flags},
      {"cgroup_dir", config.cgroup_dir},
      {"tty", config.tty},
      {"container_spec", config.container_spec_json},
  };
  return doc.dump();
}

Result<LaunchConfig> parseLaunchConfig(std::string_view json) {
  try {
    auto doc = nlohmann::json::parse(json);
    LaunchConfig out;
    out.kind = doc.at("kind").get<std::string>() == "container" ? LaunchConfig::Kind::kContainer
                                                                : LaunchConfig::Kind::kExec;
    out.spec_json = doc.at("spec").get<std::string>();
    out.rootfs = doc.at("rootfs").get<std::string>();
    for (const auto& v : doc.at("volumes")) {
      out.volumes.push_back({v.at("source").get<std::string>(),
                             v.at("destination").get<std::string>(),
                             v.at("readonly").get<bool>()});
    }
    out.init_pid = doc.at("init_pid").get<int>();
    out.join_flags = doc.at("join_flags").get<int>();
    out.clone_flags = doc.at("clone_flags").get<int>();
    out.cgroup_dir = doc.at("cgroup_dir").get<std::string>();
    out.tty = doc.at("tty").get<bool>();
    out.container_spec_json = doc.at("container_spec").get<std::string>();
    return out;
  } catch (const std::exception& e) {
    return fail(Errc::kProtocol, std::string("launch config: ") + e.what());
  }
}

}  // namespace nv::agent
