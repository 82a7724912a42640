// SPDX-License-Identifier: Apache-2.0
// Builds the OCI runtime spec (config.json) that the agent applies inside the guest, from an
// image's config and the user's options — what `docker run` does with its flags.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace nv::runtime {

// The parts of an OCI image config that shape the process.
struct ImageProcessDefaults {
  std::vector<std::string> env;
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::string working_dir;
  std::string user;
};

struct ContainerOptions {
  std::vector<std::string> args;      // replaces the image's cmd (entrypoint stays)
  std::vector<std::string> env;       // "K=V", added to / overriding the image's
  std::string cwd;                    // empty: image's working_dir or "/"
  std::string user;                   // "uid[:gid]" or "name[:group]"; empty: image's
  std::string hostname;
  bool terminal = false;
  uint64_t memory_limit_bytes = 0;    // 0: no container limit (the VM's memory still bounds it)
  double cpus = 0;                    // 0: no quota
  uint64_t pids_limit = 0;
  bool read_only_rootfs = false;
};

// The full spec. Errors: no command (neither args nor image defaults), bad env entries.
[[nodiscard]] Result<nlohmann::json> buildOciSpec(const ImageProcessDefaults& image,
                                                  const ContainerOptions& options);

// Merges "K=V" lists: later entries replace earlier ones with the same key, order kept.
[[nodiscard]] std::vector<std::string> mergeEnv(const std::vector<std::string>& base,
                                                const std::vector<std::string>& overrides);

}  // namespace nv::runtime
