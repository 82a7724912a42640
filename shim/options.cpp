// SPDX-License-Identifier: Apache-2.0
#include "shim/options.h"

#include <optional>

#include "images/digest.h"

namespace nv::shim {

Result<ShimArgs> parseArgs(const std::vector<std::string>& argv) {
  ShimArgs args;
  for (size_t i = 1; i < argv.size(); ++i) {
    std::string arg = argv[i];
    if (arg.empty() || arg[0] != '-') {
      if (!args.action.empty()) {
        return fail(Errc::kInvalidArgument, "unexpected argument '" + arg + "' after '" +
                                                args.action + "'");
      }
      if (arg != "start" && arg != "delete") {
        return fail(Errc::kInvalidArgument,
                    "unknown action '" + arg + "' (expected start or delete)");
      }
      args.action = arg;
      continue;
    }
    std::string name = arg.substr(arg.rfind("--", 0) == 0 ? 2 : 1);
    std::optional<std::string> value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    if (name == "debug") {
      args.debug = value.value_or("true") != "false";
      continue;
    }
    if (name == "v" || name == "version") {
      args.version = true;
      continue;
    }
    if (name == "h" || name == "help") {
      args.help = true;
      continue;
    }
    std::string* target = nullptr;
    if (name == "namespace") target = &args.namespace_name;
    if (name == "id") target = &args.id;
    if (name == "address") target = &args.address;
    if (name == "publish-binary") target = &args.publish_binary;
    if (name == "bundle") target = &args.bundle;
    // containerd's Go shim library flag; accepted and ignored.
    std::string ignored;
    if (name == "socket") target = &ignored;
    if (target == nullptr) return fail(Errc::kInvalidArgument, "unknown flag -" + name);
    if (!value) {
      if (i + 1 >= argv.size()) return fail(Errc::kInvalidArgument, "flag -" + name + " needs a value");
      value = argv[++i];
    }
    *target = *value;
  }
  if (args.version || args.help) return args;
  if (args.namespace_name.empty()) return fail(Errc::kInvalidArgument, "-namespace is required");
  if (args.id.empty()) return fail(Errc::kInvalidArgument, "-id is required");
  return args;
}

std::string sandboxIdFor(const std::string& task_id) {
  constexpr size_t kMax = 24;
  return task_id.size() <= kMax ? task_id : images::sha256Hex(task_id).substr(0, kMax);
}

std::string socketPath(const std::string& containerd_address, const std::string& namespace_name,
                       const std::string& id, const std::string& socket_dir) {
  return socket_dir + "/" +
         images::sha256Hex(containerd_address + "/" + namespace_name + "/" + id);
}

}  // namespace nv::shim
