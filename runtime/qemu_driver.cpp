// SPDX-License-Identifier: Apache-2.0
#include "runtime/qemu_driver.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <mutex>
#include <optional>

#include "common/logging.h"
#include "common/subprocess.h"
#include "runtime/cgroup.h"
#include "runtime/jail.h"
#include "runtime/qmp_client.h"

namespace nv::runtime {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kStartTimeout{10000};

// What a QEMU process leaves on the host while it runs: <dir>/vm (its sockets and console
// log, owned by the jail's uid) and <dir>/jail (the jail's mount point, empty on the host).
// Removing it keeps the console log for `inspect`/debugging until the sandbox is removed.
struct QemuFiles {
  std::filesystem::path vm_dir;
  std::filesystem::path jail_dir;  // empty when not jailed

  QemuFiles() = default;
  QemuFiles(std::filesystem::path vm, std::filesystem::path jail)
      : vm_dir(std::move(vm)), jail_dir(std::move(jail)) {}
  QemuFiles(QemuFiles&& other) noexcept
      : vm_dir(std::exchange(other.vm_dir, {})), jail_dir(std::exchange(other.jail_dir, {})) {}
  QemuFiles& operator=(QemuFiles&&) = delete;
  QemuFiles(const QemuFiles&) = delete;
  ~QemuFiles() {
    std::error_code ignored;
    if (!vm_dir.empty()) {
      for (const char* socket : {"agent.sock", "qmp.sock"}) {
        std::filesystem::remove(vm_dir / socket, ignored);
      }
    }
    if (!jail_dir.empty()) std::filesystem::remove(jail_dir, ignored);
  }
};

// argv[0] as an absolute path: PATH searched when it has no '/'.
Result<std::filesystem::path> resolveBinary(const std::string& binary) {
  auto missing = [&] {
    return fail(Errc::kNotFound, binary + " not found; run 'make deps' (qemu-system-x86)");
  };
  if (binary.find('/') != std::string::npos) {
    std::error_code ec;
    auto path = std::filesystem::absolute(binary, ec);
    if (ec || ::access(path.c_str(), X_OK) != 0) return missing();
    return path;
  }
  const char* env = std::getenv("PATH");
  std::string path_list = env != nullptr ? env : "/usr/local/bin:/usr/bin:/bin";
  for (size_t start = 0; start <= path_list.size();) {
    size_t colon = path_list.find(':', start);
    if (colon == std::string::npos) colon = path_list.size();
    const std::filesystem::path candidate =
        std::filesystem::path(path_list.substr(start, colon - start)) / binary;
    if (candidate.is_absolute() && ::access(candidate.c_str(), X_OK) == 0) return candidate;
    start = colon + 1;
  }
  return missing();
}

class QemuVm final : public Vm {
 public:
  QemuVm(VmSpec spec, QemuFiles files, SandboxCgroup cgroup, Subprocess process, QmpClient qmp,
         bool jailed)
      : spec_(std::move(spec)),
        files_(std::move(files)),
        cgroup_(std::move(cgroup)),
        process_(std::move(process)),
        qmp_(std::move(qmp)),
        jailed_(jailed) {}
  ~QemuVm() override { kill(); }

  std::filesystem::path agentSocket() const override { return files_.vm_dir / "agent.sock"; }
  pid_t vmmPid() const override { return process_.pid(); }

  Result<void> addDisk(const DiskSpec& disk) override {
    if (!spec_.pci) {
      return fail(Errc::kUnsupported, "qemu microvm cannot hot-add disks; start the VM with pci");
    }
    if (jailed_) {
      return fail(Errc::kUnsupported,
                  "disks cannot be hot-added to a jailed QEMU yet; set jail = false in the "
                  "config for pods");
    }
    if (!qmp_) return fail(Errc::kUnavailable, "QMP connection lost");
    nlohmann::json blockdev = {
        {"driver", "raw"},
        {"node-name", "node-" + disk.serial},
        {"read-only", disk.read_only},
        {"file", {{"driver", "file"}, {"filename", disk.path.string()},
                  {"read-only", disk.read_only}}},
    };
    NV_TRY(qmp_->execute("blockdev-add", blockdev));
    nlohmann::json device = {{"driver", "virtio-blk-pci"}, {"id", "dev-" + disk.serial},
                             {"drive", "node-" + disk.serial}, {"serial", disk.serial}};
    if (auto added = qmp_->execute("device_add", device); !added) {
      (void)qmp_->execute("blockdev-del", {{"node-name", "node-" + disk.serial}});
      return tl::unexpected(added.error());
    }
    return {};
  }

  Result<void> wait(milliseconds timeout) override {
    NV_ASSIGN_OR_RETURN(int status, process_.wait(timeout));
    recordExit(status);
    return {};
  }

  void kill() override {
    if (process_.exited() || process_.pid() <= 0) return;
    (void)process_.signal(SIGKILL);
    if (auto status = process_.wait(milliseconds(5000))) recordExit(*status);
  }

  Result<VmStats> stats() const override { return processStats(process_.pid()); }

  Result<void> pause() override { return runState("stop"); }
  Result<void> resume() override { return runState("cont"); }

  std::string exitReason() const override {
    std::string reason = exit_description_.empty() ? "qemu is running" : exit_description_;
    std::string log = logTail(spec_.dir / "qemu.log", 2);
    return log.empty() ? reason : reason + ": " + log;
  }

 private:
  void recordExit(int status) {
    if (exit_description_.empty()) {
      int code = waitStatusToExitCode(status);
      exit_description_ = code > 128 ? "qemu killed by signal " + std::to_string(code - 128)
                                     : "qemu exited with status " + std::to_string(code);
    }
    std::lock_guard lock(qmp_mutex_);
    qmp_.reset();
  }

  // QMP `stop` / `cont`: the vCPUs halt or run on; QEMU and the agent channel stay up.
  Result<void> runState(const char* command) {
    std::lock_guard lock(qmp_mutex_);
    if (!qmp_ || process_.exited()) return fail(Errc::kUnavailable, "qemu is not running");
    NV_TRY(qmp_->execute(command));
    return {};
  }

  VmSpec spec_;
  QemuFiles files_;       // removed after the process below is reaped (members die in reverse)
  SandboxCgroup cgroup_;  // likewise
  Subprocess process_;
  std::optional<QmpClient> qmp_;
  std::mutex qmp_mutex_;  // QmpClient is not thread-safe: pause/resume vs the exit path
  bool jailed_ = false;
  std::string exit_description_;
};

}  // namespace

std::string baseKernelCmdline(bool pci, const std::string& channel) {
  // console on the first UART; reboot (triple fault) ends the VM with -no-reboot; skip probes
  // the guest does not need (i8042 aux/mux, PCI on microvm).
  std::string cmdline =
      "console=ttyS0 panic=-1 reboot=t quiet i8042.noaux i8042.nomux i8042.dumbkbd "
      "random.trust_cpu=on nanovisor.channel=" + channel;
  if (!pci) cmdline += " pci=off";
  return cmdline;
}

std::vector<std::string> qemuArgs(const VmSpec& spec, const QemuOptions& options) {
  const bool kvm = options.accel == Accel::kKvm;
  const std::string bus = spec.pci ? "pci" : "device";
  std::vector<std::string> a = {
      options.binary,
      "-name", "nanovisor-" + spec.id,
      "-M", spec.pci ? "pc" : "microvm,x-option-roms=off,rtc=off,acpi=off",
      // TCG's translation cache is bounded (the sandbox cgroup counts it, runtime/cgroup.h).
      "-accel", kvm ? "kvm" : "tcg,tb-size=" + std::to_string(kTcgCacheMiB),
      "-cpu", kvm ? "host" : "max",
      "-smp", std::to_string(spec.cpus),
      "-m", std::to_string(spec.memory_mib) + "M",
      "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
      "-serial", "file:" + (spec.dir / "console.log").string(),
      "-qmp", "unix:" + (spec.dir / "qmp.sock").string() + ",server=on,wait=off",
      "-kernel", spec.kernel.string(),
      "-initrd", spec.initramfs.string(),
      "-append", baseKernelCmdline(spec.pci, "serial") +
                     (spec.cmdline.empty() ? "" : " " + spec.cmdline),
      "-device", "virtio-serial-" + bus + ",id=serial0",
      "-chardev", "socket,id=agent,path=" + (spec.dir / "agent.sock").string() +
                      ",server=on,wait=off",
      "-device", "virtserialport,chardev=agent,name=io.nanovisor.agent",
      "-device", "virtio-rng-" + bus,
  };
  if (options.sandbox) {
    a.insert(a.end(), {"-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,"
                                   "resourcecontrol=deny"});
  }
  for (const auto& disk : spec.disks) {
    a.insert(a.end(), {"-blockdev", "driver=raw,node-name=node-" + disk.serial +
                                        ",read-only=" + (disk.read_only ? "on" : "off") +
                                        ",file.driver=file,file.filename=" + disk.path.string(),
                       "-device", "virtio-blk-" + bus + ",drive=node-" + disk.serial +
                                      ",serial=" + disk.serial});
  }
  return a;
}

Result<std::unique_ptr<Vm>> QemuDriver::create(const VmSpec& spec) {
  NV_TRY(spec.validate());
  NV_ASSIGN_OR_RETURN(const std::filesystem::path binary, resolveBinary(options_.binary));
  const auto vm_dir = spec.dir / "vm";
  const auto jail_dir = spec.dir / "jail";
  {
    std::error_code ignored;
    std::filesystem::remove_all(vm_dir, ignored);
    std::filesystem::remove(jail_dir, ignored);
    std::filesystem::remove(spec.dir / "qemu.log", ignored);
  }
  if (::mkdir(vm_dir.c_str(), 0700) != 0) return failErrno("mkdir " + vm_dir.string());
  QemuFiles files(vm_dir, options_.jail ? jail_dir : std::filesystem::path());

  SpawnOptions spawn;
  spawn.stdout_path = (spec.dir / "qemu.log").string();
  spawn.stderr_path = "=stdout";
  spawn.new_session = true;
  spawn.die_with_parent = true;
  // The VM as QEMU sees it: host paths, or the jail's.
  VmSpec seen = spec;
  QemuOptions options = options_;
  options.binary = binary.string();
  seen.dir = vm_dir;
  std::optional<JailSpec> jail;
  if (options_.jail) {
    jail.emplace();
    jail->root = jail_dir;
    if (::mkdir(jail_dir.c_str(), 0700) != 0) return failErrno("mkdir " + jail_dir.string());
    jail->uid = allocateJailId(spec.id);
    jail->gid = jail->uid;
    jail->kvm = options_.accel == Accel::kKvm;
    addSystemFiles(*jail);
    // QEMU writes only here: its sockets and the console log.
    if (::chown(vm_dir.c_str(), jail->uid, jail->gid) != 0) {
      return failErrno("chown " + vm_dir.string());
    }
    jail->mounts.push_back({.source = vm_dir, .target = "/vm", .writable = true});
    jail->mounts.push_back({.source = spec.kernel, .target = "/boot/vmlinux"});
    jail->mounts.push_back({.source = spec.initramfs, .target = "/boot/initramfs"});
    seen.dir = "/vm";
    seen.kernel = "/boot/vmlinux";
    seen.initramfs = "/boot/initramfs";
    for (auto& disk : seen.disks) {
      // Per-sandbox disks (volumes) belong to the sandbox's uid; shared ones (the image's
      // rootfs) must be world-readable (checked by the jail).
      const auto [inside, rest] = std::mismatch(spec.dir.begin(), spec.dir.end(),
                                                disk.path.begin(), disk.path.end());
      if (inside == spec.dir.end() && ::chown(disk.path.c_str(), jail->uid, jail->gid) != 0) {
        return failErrno("chown " + disk.path.string());
      }
      const std::string target = "/disks/" + disk.serial;
      jail->mounts.push_back({.source = disk.path, .target = target, .writable = !disk.read_only});
      disk.path = target;
    }
    if (binary.string().rfind("/usr/", 0) != 0) {
      jail->mounts.push_back({.source = binary, .target = "/vmm/qemu", .exec = true});
      options.binary = "/vmm/qemu";
    }
  }
  SandboxCgroup cgroup;
  if (options_.cgroup) {
    // Unique per sandbox dir: two state roots may use the same sandbox id.
    char hash[9];
    std::snprintf(hash, sizeof hash, "%08x",
                  static_cast<unsigned>(std::hash<std::string>{}(spec.dir.string()) & 0xffffffffu));
    auto made = SandboxCgroup::create("nanovisor-" + spec.id + "-" + hash,
                                      vmmLimits(spec.cpus, spec.memory_mib,
                                                options_.accel == Accel::kTcg));
    if (made) {
      cgroup = std::move(*made);
    } else if (made.error().is(Errc::kUnsupported)) {
      log::get("qemu")->warn("{}; QEMU runs without host cgroup limits", made.error().message());
    } else {
      return tl::unexpected(made.error());
    }
  }
  if (jail) jail->cgroup_procs = cgroup.procsFiles();
  spawn.argv = qemuArgs(seen, options);
  log::get("qemu")->debug("starting {}{}", jail ? "jailed (uid " + std::to_string(jail->uid) + "): " : "",
                          fmt::join(spawn.argv, " "));
  auto process = jail ? spawnJailed(*jail, spawn) : Subprocess::spawn(spawn);
  if (!process) {
    if (process.error().isErrno(ENOENT) && !jail) {
      return fail(Errc::kNotFound, options_.binary + " not found; run 'make deps' (qemu-system-x86)");
    }
    return tl::unexpected(process.error());
  }
  if (!jail) NV_TRY(cgroup.join(process->pid()));  // the jailed QEMU joined before it started
  auto qmp = QmpClient::connect(vm_dir / "qmp.sock", kStartTimeout);
  if (!qmp) {
    std::string why = logTail(spec.dir / "qemu.log", 2);
    return fail(Errc::kUnavailable,
                "qemu did not start: " + (why.empty() ? qmp.error().message() : why));
  }
  return std::make_unique<QemuVm>(spec, std::move(files), std::move(cgroup), std::move(*process),
                                  std::move(*qmp), jail.has_value());
}

}  // namespace nv::runtime
