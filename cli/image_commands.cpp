// SPDX-License-Identifier: Apache-2.0
// The `image` subcommands, with a progress bar on a terminal during import.
#include "cli/image_commands.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>

#include <fmt/format.h>

#include "images/policy.h"
#include "images/rootfs.h"
#include "images/signing.h"
#include "images/store.h"

namespace nv::cli {
namespace {

using images::Progress;

[[noreturn]] void die(const Error& e) {
  std::fprintf(stderr, "nanovisor: %s\n", e.message().c_str());
  throw CLI::RuntimeError(1);
}

template <class T>
T orDie(Result<T> r) {
  if (!r) {
    die(r.error());
  }
  return std::move(*r);
}

void orDie(Result<void> r) {
  if (!r) {
    die(r.error());
  }
}

std::string humanBytes(uint64_t n) {
  if (n >= (1ull << 30)) {
    return fmt::format("{:.1f} GiB", static_cast<double>(n) / static_cast<double>(1ull << 30));
  }
  if (n >= (1ull << 20)) {
    return fmt::format("{:.1f} MiB", static_cast<double>(n) / static_cast<double>(1ull << 20));
  }
  if (n >= (1ull << 10)) {
    return fmt::format("{:.1f} KiB", static_cast<double>(n) / 1024.0);
  }
  return fmt::format("{} B", n);
}

// Renders import progress: a redrawn bar on a terminal, one line per step otherwise.
class ProgressPrinter {
 public:
  ProgressPrinter() : tty_(::isatty(STDERR_FILENO) == 1) {}
  ~ProgressPrinter() { finish(); }
  ProgressPrinter(const ProgressPrinter&) = delete;
  ProgressPrinter& operator=(const ProgressPrinter&) = delete;

  void operator()(const Progress& p) {
    std::string key = p.phase + " " + p.item;
    if (!tty_) {
      if (key != last_key_) {
        std::fprintf(stderr, "%s %s%s\n", p.phase.c_str(), p.item.c_str(),
                     p.total > 0 ? (" (" + humanBytes(p.total) + ")").c_str() : "");
        last_key_ = key;
      }
      return;
    }
    auto now = std::chrono::steady_clock::now();
    if (key == last_key_ && p.done != p.total && now - last_draw_ < std::chrono::milliseconds(80)) {
      return;
    }
    last_draw_ = now;
    last_key_ = key;
    constexpr int kWidth = 30;
    int filled = p.total > 0 ? static_cast<int>(std::min<uint64_t>(p.done, p.total) * kWidth / p.total)
                             : 0;
    std::string bar(static_cast<size_t>(filled), '#');
    bar.append(static_cast<size_t>(kWidth - filled), p.total > 0 ? '-' : ' ');
    std::string amount = p.total > 0 ? humanBytes(p.done) + "/" + humanBytes(p.total) : "";
    std::fprintf(stderr, "\r\033[K[%s] %-7s %-28s %s", bar.c_str(), p.phase.c_str(),
                 p.item.substr(0, 28).c_str(), amount.c_str());
    std::fflush(stderr);
    drawn_ = true;
  }

  void finish() {
    if (tty_ && drawn_) {
      std::fprintf(stderr, "\r\033[K");
      std::fflush(stderr);
      drawn_ = false;
    }
  }

 private:
  bool tty_;
  bool drawn_ = false;
  std::string last_key_;
  std::chrono::steady_clock::time_point last_draw_{};
};

images::Store openStore(const StoreRootFn& root) { return orDie(images::Store::open(root())); }

// The policy at `path`; the default path is optional (absent = permissive defaults).
images::Policy policyFrom(const std::string& path, bool explicit_path) {
  if (!explicit_path && ::access(path.c_str(), F_OK) != 0) {
    return {};
  }
  return orDie(images::loadPolicy(path));
}

}  // namespace

void addImageCommands(CLI::App& app, StoreRootFn store_root) {
  CLI::App* image = app.add_subcommand("image", "Manage OCI images in the local store");
  image->require_subcommand(1);

  struct ImportArgs {
    std::string path;
    std::string name;
    std::string policy{images::kDefaultPolicyPath};
    bool no_rootfs = false;
  };
  auto ia = std::make_shared<ImportArgs>();
  CLI::App* imp = image->add_subcommand(
      "import", "Import an OCI image layout (dir or tar) or a docker save archive");
  imp->add_option("path", ia->path, "OCI layout directory or tar, or docker save tar")->required();
  imp->add_option("--name", ia->name, "Store the image as NAME:TAG");
  auto* policy_opt = imp->add_option("--policy", ia->policy, "Image policy (setuid/FIFO rules)");
  imp->add_flag("--no-rootfs", ia->no_rootfs, "Do not build the EROFS rootfs image now");
  imp->callback([ia, policy_opt, store_root] {
    images::Store store = openStore(store_root);
    images::Policy policy = policyFrom(ia->policy, policy_opt->count() > 0);
    images::ImportOptions opts;
    opts.limits = policy.layerLimits(opts.limits);
    opts.build_rootfs = !ia->no_rootfs;
    if (!ia->name.empty()) {
      opts.name = ia->name;
    }
    auto printer = std::make_shared<ProgressPrinter>();
    opts.progress = [printer](const Progress& p) { (*printer)(p); };
    auto imported = store.import(ia->path, opts);
    printer->finish();
    for (const auto& r : orDie(std::move(imported))) {
      std::printf("imported %s %s (%s)\n", r.name.c_str(), r.digest.c_str(),
                  humanBytes(r.size).c_str());
    }
  });

  CLI::App* ls = image->add_subcommand("ls", "List images");
  ls->callback([store_root] {
    images::Store store = openStore(store_root);
    auto list = orDie(store.list());
    std::printf("%-50s %-19s %10s\n", "NAME", "DIGEST", "SIZE");
    for (const auto& r : list) {
      std::printf("%-50s %-19s %10s\n", r.name.c_str(), r.digest.substr(0, 19).c_str(),
                  humanBytes(r.size).c_str());
    }
  });

  auto rm_names = std::make_shared<std::vector<std::string>>();
  CLI::App* rm = image->add_subcommand("rm", "Remove images (blobs still in use are kept)");
  rm->add_option("name", *rm_names, "Image name or manifest digest")->required();
  rm->callback([rm_names, store_root] {
    images::Store store = openStore(store_root);
    for (const auto& n : *rm_names) {
      orDie(store.remove(n));
      std::printf("removed %s\n", n.c_str());
    }
  });

  auto inspect_name = std::make_shared<std::string>();
  CLI::App* inspect = image->add_subcommand("inspect", "Show an image as JSON");
  inspect->add_option("name", *inspect_name, "Image name or manifest digest")->required();
  inspect->callback([inspect_name, store_root] {
    images::Store store = openStore(store_root);
    std::printf("%s\n", orDie(store.inspect(*inspect_name)).c_str());
  });

  struct SignArgs {
    std::string name;
    std::string key;
  };
  auto sa = std::make_shared<SignArgs>();
  CLI::App* sign = image->add_subcommand(
      "sign", "Sign an image's manifest digest (ECDSA P-256 or Ed25519 PEM private key)");
  sign->add_option("name", sa->name, "Image name or manifest digest")->required();
  sign->add_option("--key", sa->key, "PEM private key")->required();
  sign->callback([sa, store_root] {
    images::Store store = openStore(store_root);
    images::ImageRecord r = orDie(store.get(sa->name));
    std::printf("signed %s %s -> %s\n", r.name.c_str(), r.digest.c_str(),
                orDie(images::sign(store, r, sa->key)).c_str());
  });

  auto rootfs_name = std::make_shared<std::string>();
  CLI::App* rootfs = image->add_subcommand(
      "rootfs", "Print the image's EROFS rootfs image path, building it on first use");
  rootfs->add_option("name", *rootfs_name, "Image name or manifest digest")->required();
  rootfs->callback([rootfs_name, store_root] {
    images::Store store = openStore(store_root);
    images::ImageRecord r = orDie(store.get(*rootfs_name));
    std::printf("%s\n", orDie(images::rootfsImage(store, r)).c_str());
  });

  struct VerifyArgs {
    std::string name;
    std::string policy{images::kDefaultPolicyPath};
  };
  auto va = std::make_shared<VerifyArgs>();
  CLI::App* verify = image->add_subcommand("verify", "Check an image against the image policy");
  verify->add_option("name", va->name, "Image name or manifest digest")->required();
  auto* verify_policy = verify->add_option("--policy", va->policy, "Image policy JSON");
  verify->callback([va, verify_policy, store_root] {
    images::Store store = openStore(store_root);
    images::ImageRecord r = orDie(store.get(va->name));
    images::Policy policy = policyFrom(va->policy, verify_policy->count() > 0);
    orDie(images::checkPolicy(store, r, policy));
    std::printf("%s %s: allowed by policy\n", r.name.c_str(), r.digest.c_str());
  });
}

}  // namespace nv::cli
