// SPDX-License-Identifier: Apache-2.0
// `nanovisor image ...`: import, ls, rm, inspect, sign, verify, rootfs over the image store.
#pragma once

#include <functional>
#include <string>

#include <CLI/CLI.hpp>

namespace nv::cli {

// Returns the image store root (the main program's --root / default /var/lib/nanovisor).
using StoreRootFn = std::function<std::string()>;

// Registers the `image` subcommand tree on `app`. Subcommands print errors as one line on
// stderr and throw CLI::RuntimeError(1), which CLI::App::exit() turns into exit status 1.
void addImageCommands(CLI::App& app, StoreRootFn store_root);

}  // namespace nv::cli
