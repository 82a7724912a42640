// SPDX-License-Identifier: Apache-2.0
#include "runtime/qemu_driver.h"

#include <signal.h>

#include <fstream>
#include <mutex>
#include <optional>

#include "common/logging.h"
#include "common/subprocess.h"
#include "runtime/qmp_client.h"

namespace nv::runtime {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kStartTimeout{10000};

// Last non-empty lines of a log file, joined by "; " (for one-line error messages).
std::string tailOf(const std::filesystem::path& path, size_t lines) {
  std::ifstream in(path);
  std::vector<std::string> all;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) all.push_back(line);
  }
  std::string out;
  for (size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i) {
    if (!out.empty()) out += "; ";
    out += all[i];
  }
  return out;
}

class QemuVm final : public Vm {
 public:
  QemuVm(VmSpec spec, Subprocess process, QmpClient qmp)
      : spec_(std::move(spec)), process_(std::move(process)), qmp_(std::move(qmp)) {}
  ~QemuVm() override { kill(); }

  std::filesystem::path agentSocket() const override { return spec_.dir / "agent.sock"; }
  pid_t vmmPid() const override { return process_.pid(); }

  Result<void> addDisk(const DiskSpec& disk) override {
    if (!spec_.pci) {
      return fail(Errc::kUnsupported, "qemu microvm cannot hot-add disks; start the VM with pci");
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
    std::string log = tailOf(spec_.dir / "qemu.log", 2);
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
  Subprocess process_;
  std::optional<QmpClient> qmp_;
  std::mutex qmp_mutex_;  // QmpClient is not thread-safe: pause/resume vs the exit path
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
      "-accel", kvm ? "kvm" : "tcg",
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
  for (const char* name : {"agent.sock", "qmp.sock", "console.log", "qemu.log"}) {
    std::error_code ignored;
    std::filesystem::remove(spec.dir / name, ignored);
  }
  SpawnOptions spawn;
  spawn.argv = qemuArgs(spec, options_);
  spawn.stdout_path = (spec.dir / "qemu.log").string();
  spawn.stderr_path = "=stdout";
  spawn.new_session = true;
  spawn.die_with_parent = true;
  log::get("qemu")->debug("starting {}", fmt::join(spawn.argv, " "));
  auto process = Subprocess::spawn(spawn);
  if (!process) {
    if (process.error().isErrno(ENOENT)) {
      return fail(Errc::kNotFound, options_.binary + " not found; run 'make deps' (qemu-system-x86)");
    }
    return tl::unexpected(process.error());
  }
  auto qmp = QmpClient::connect(spec.dir / "qmp.sock", kStartTimeout);
  if (!qmp) {
    std::string why = tailOf(spec.dir / "qemu.log", 2);
    return fail(Errc::kUnavailable,
                "qemu did not start: " + (why.empty() ? qmp.error().message() : why));
  }
  return std::make_unique<QemuVm>(spec, std::move(*process), std::move(*qmp));
}

}  // namespace nv::runtime
