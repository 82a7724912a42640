// SPDX-License-Identifier: Apache-2.0
#include "runtime/qemu_driver.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <optional>
#include <thread>

#include <fmt/format.h>

#include "common/logging.h"
#include "common/subprocess.h"
#include "runtime/cgroup.h"
#include "runtime/host_probe.h"
#include "runtime/jail.h"
#include "runtime/qmp_client.h"
#include "runtime/vmm_host.h"

namespace nv::runtime {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kStartTimeout{10000};

constexpr const char* kEmptySlotFile = "empty-slot";  // in the VM dir

// A value inside a QEMU option list: commas are doubled (QEMU's escape).
std::string optionValue(const std::string& value) {
  std::string out;
  for (char c : value) {
    out += c;
    if (c == ',') out += ',';
  }
  return out;
}

constexpr size_t kMicrovmTransports = 8;                // QEMU 7.2's VIRTIO_NUM_TRANSPORTS

std::string slotSerial(size_t index) { return "slot" + std::to_string(index); }

// A throttle-group's limits: rate as x-*-total, the burst as x-*-total-max over one second
// (QEMU's default burst length), which is the bucket size of our own limiter.
std::string throttleLimits(const DiskRateLimit& limit) {
  std::string out;
  auto add = [&](const char* name, const RateLimit& rate) {
    if (rate.limited()) {
      out += fmt::format(",x-{}-total={}", name, rate.rate);
      if (rate.burst != 0) {
        out += fmt::format(",x-{}-total-max={}", name, rate.burst);
      }
    }
  };
  add("bps", limit.bytes);
  add("iops", limit.ops);
  return out;
}

class QemuVm final : public Vm {
 public:
  QemuVm(VmSpec spec, VmmHostFiles files, SandboxCgroup cgroup, Subprocess process,
         QmpClient qmp)
      : spec_(std::move(spec)),
        files_(std::move(files)),
        cgroup_(std::move(cgroup)),
        process_(std::move(process)),
        qmp_(std::move(qmp)) {}
  ~QemuVm() override { kill(); }

  std::filesystem::path agentSocket() const override { return files_.vmDir() / "agent.sock"; }
  pid_t vmmPid() const override { return process_.pid(); }

  // The image goes in as an fd (QMP add-fd), so a jailed QEMU needs no path to it, then
  // becomes the slot's `file` child (blockdev-reopen); the guest's disk stays, its media change.
  Result<std::string> attachDisk(const std::filesystem::path& image) override {
    std::error_code ec;
    const auto size = std::filesystem::file_size(image, ec);
    if (ec) return fail(Errc::kNotFound, "disk image " + image.string() + ": " + ec.message());
    if (size > kDiskSlotBytes) {
      return fail(Errc::kInvalidArgument, "disk image " + image.string() + " is larger than a " +
                                              "disk slot (" + std::to_string(kDiskSlotBytes >> 30) +
                                              " GiB)");
    }
    UniqueFd fd(::open(image.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return failErrno("open " + image.string());
    std::lock_guard lock(qmp_mutex_);
    if (!qmp_ || process_.exited()) return fail(Errc::kUnavailable, "qemu is not running");
    auto free_slot = std::find(slot_fdsets_.begin(), slot_fdsets_.end(), -1);
    if (free_slot == slot_fdsets_.end()) {
      return fail(Errc::kTooLarge, "all " + std::to_string(slot_fdsets_.size()) +
                                                " disk slots of sandbox " + spec_.id +
                                                " are in use");
    }
    const std::string serial = slotSerial(static_cast<size_t>(free_slot - slot_fdsets_.begin()));
    NV_ASSIGN_OR_RETURN(auto added, qmp_->execute("add-fd", {{"opaque", serial}},
                                                  std::chrono::seconds(10), fd.get()));
    const int fdset = added.value("fdset-id", -1);
    auto undo = [&](const Error& error) -> Result<std::string> {
      (void)qmp_->execute("blockdev-del", {{"node-name", "media-" + serial}});
      (void)qmp_->execute("remove-fd", {{"fdset-id", fdset}});
      return tl::unexpected(error.wrap("attaching " + image.string() + " to " + serial));
    };
    if (auto file = qmp_->execute("blockdev-add", {{"driver", "file"},
                                                   {"node-name", "media-" + serial},
                                                   {"filename", "/dev/fdset/" +
                                                                    std::to_string(fdset)},
                                                   {"read-only", true}});
        !file) {
      return undo(file.error());
    }
    if (auto swapped = reopenSlot(serial, "media-" + serial); !swapped) return undo(swapped.error());
    *free_slot = fdset;
    return serial;
  }

  Result<void> detachDisk(const std::string& serial) override {
    std::lock_guard lock(qmp_mutex_);
    size_t index = 0;
    while (index < slot_fdsets_.size() && (slot_fdsets_[index] < 0 || slotSerial(index) != serial)) {
      ++index;
    }
    if (index == slot_fdsets_.size()) return fail(Errc::kNotFound, "no disk in slot " + serial);
    if (!qmp_ || process_.exited()) return fail(Errc::kUnavailable, "qemu is not running");
    NV_TRY(reopenSlot(serial, "empty-" + serial));
    (void)qmp_->execute("blockdev-del", {{"node-name", "media-" + serial}});
    (void)qmp_->execute("remove-fd", {{"fdset-id", slot_fdsets_[index]}});
    slot_fdsets_[index] = -1;
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
      exit_description_ = vmmExitDescription("qemu", status);
    }
    std::lock_guard lock(qmp_mutex_);
    qmp_.reset();
  }

  // Makes `node` the `file` child of slot `serial`'s raw node. Locked caller.
  Result<void> reopenSlot(const std::string& serial, const std::string& node) {
    NV_TRY(qmp_->execute("blockdev-reopen",
                         {{"options", nlohmann::json::array({{{"driver", "raw"},
                                                              {"node-name", "node-" + serial},
                                                              {"file", node},
                                                              {"read-only", true}}})}}));
    return {};
  }

  // QMP `stop` / `cont`: the vCPUs halt or run on; QEMU and the agent channel stay up.
  Result<void> runState(const char* command) {
    std::lock_guard lock(qmp_mutex_);
    if (!qmp_ || process_.exited()) return fail(Errc::kUnavailable, "qemu is not running");
    NV_TRY(qmp_->execute(command));
    return {};
  }

  VmSpec spec_;
  VmmHostFiles files_;    // removed after the process below is reaped (members die in reverse)
  SandboxCgroup cgroup_;  // likewise
  Subprocess process_;
  std::optional<QmpClient> qmp_;
  std::mutex qmp_mutex_;  // QmpClient is not thread-safe: pause/resume vs the exit path
  std::string exit_description_;
  std::vector<int> slot_fdsets_ = std::vector<int>(spec_.disk_slots, -1);  // -1: empty
};

}  // namespace

void reapOrphanedQemu(const std::filesystem::path& dir, const std::string& id, pid_t vmm_pid) {
  bool ours = false;
  if (vmm_pid > 0) {
    // Only if the pid was not reused: QEMU's command line names the sandbox (-name).
    std::ifstream in("/proc/" + std::to_string(vmm_pid) + "/cmdline");
    const std::string cmdline{std::istreambuf_iterator<char>(in), {}};
    const std::string name = std::string(1, '\0') + "nanovisor-" + id + std::string(1, '\0');
    ours = cmdline.find(name) != std::string::npos;
  }
  reapOrphanedVmm(dir, id, ours ? vmm_pid : 0);
}

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
  std::string cmdline = baseKernelCmdline(/*pci=*/false, "serial");
  if (!kvm && options.guest_tsc_khz != 0) cmdline += " " + tcgClockCmdline(options.guest_tsc_khz);
  if (!spec.cmdline.empty()) cmdline += " " + spec.cmdline;
  std::vector<std::string> a = {
      options.binary,
      "-name", "nanovisor-" + spec.id,
      // The RTC: wall-clock time for the guest, and with the TSC clocksource (TCG) the guest
      // would otherwise wait ~1.5 s for a clock that never ticks.
      "-M", "microvm,x-option-roms=off,rtc=on,acpi=off",
      // TCG's translation cache is bounded (the sandbox cgroup counts it, runtime/cgroup.h).
      "-accel", kvm ? "kvm" : "tcg,tb-size=" + std::to_string(kTcgCacheMiB),
      "-cpu", kvm ? "host" : "max",
      "-smp", std::to_string(spec.cpus),
      "-m", std::to_string(spec.memory_mib) + "M",
      "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
      // Appended to, so the owner can cut it while QEMU writes (ConsoleLogCap).
      "-chardev", "file,id=console,append=on,path=" + (spec.dir / "console.log").string(),
      "-serial", "chardev:console",
      "-qmp", "unix:" + (spec.dir / "qmp.sock").string() + ",server=on,wait=off",
      "-kernel", spec.kernel.string(),
      "-initrd", spec.initramfs.string(),
      "-append", cmdline,
      // One port: the agent's (nr 1; nr 0 is kept for a console). The default of 31 ports
      // makes the guest set up 64 virtqueues, ~40 ms of a TCG boot (docs/performance.md).
      "-device", "virtio-serial-device,id=serial0,max_ports=2",
      "-chardev", "socket,id=agent,path=" + (spec.dir / "agent.sock").string() +
                      ",server=on,wait=off",
      "-device", "virtserialport,chardev=agent,name=io.nanovisor.agent",
      "-device", "virtio-rng-device",
  };
  if (options.sandbox) {
    a.insert(a.end(), {"-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,"
                                   "resourcecontrol=deny"});
  }
  // Each disk: raw node-<serial> over its file, under a throttle filter when the sandbox
  // has a disk rate limit (its own throttle group: the limit is per disk).
  auto addDisk = [&](const std::string& serial, const std::string& raw_options, bool read_only) {
    const std::string ro = read_only ? "on" : "off";
    a.insert(a.end(), {"-blockdev", "driver=raw,node-name=node-" + serial + ",read-only=" + ro +
                                        "," + raw_options});
    std::string drive = "node-" + serial;
    if (spec.disk_limit.limited()) {
      a.insert(a.end(), {"-object", "throttle-group,id=tg-" + serial +
                                        throttleLimits(spec.disk_limit),
                         "-blockdev", "driver=throttle,node-name=io-" + serial +
                                          ",throttle-group=tg-" + serial + ",file=" + drive +
                                          ",read-only=" + ro});
      drive = "io-" + serial;
    }
    a.insert(a.end(), {"-device", "virtio-blk-device,drive=" + drive + ",serial=" + serial});
  };
  for (const auto& disk : spec.disks) {
    addDisk(disk.serial, "file.driver=file,file.filename=" + optionValue(disk.path.string()),
            disk.read_only);
  }
  // Pods' disk slots: an empty sparse file until attachDisk swaps the media.
  for (uint32_t i = 0; i < spec.disk_slots; ++i) {
    const std::string serial = slotSerial(i);
    a.insert(a.end(), {"-blockdev", "driver=file,node-name=empty-" + serial + ",filename=" +
                                        (spec.dir / kEmptySlotFile).string() + ",read-only=on"});
    addDisk(serial, "file=empty-" + serial, true);
  }
  // Volumes: the `local` 9p backend serves the directory as QEMU's own uid (security_model
  // none: the guest's chown/mknod-as-root requests fail quietly; no xattr metadata).
  for (const auto& share : spec.shares) {
    a.insert(a.end(), {"-fsdev", "local,id=fs-" + share.tag + ",path=" +
                                     optionValue(share.host_dir.string()) +
                                     ",security_model=none" +
                                     (share.read_only ? ",readonly=on" : ""),
                       "-device", "virtio-9p-device,fsdev=fs-" + share.tag +
                                      ",mount_tag=" + share.tag});
  }
  return a;
}

Result<std::unique_ptr<Vm>> QemuDriver::create(const VmSpec& spec) {
  NV_TRY(spec.validate());
  // microvm's virtio-mmio transports: the agent channel and rng take two.
  const size_t devices = 2 + spec.disks.size() + spec.shares.size() + spec.disk_slots;
  if (devices > kMicrovmTransports) {
    return fail(Errc::kInvalidArgument,
                "qemu microvm has " + std::to_string(kMicrovmTransports) +
                    " virtio devices; this VM needs " + std::to_string(devices) +
                    " (2 + disks + volumes + pod disk slots): use fewer volumes");
  }
  NV_ASSIGN_OR_RETURN(const std::filesystem::path binary,
                      resolveVmmBinary(options_.binary, "run 'make deps' (qemu-system-x86)"));
  {
    std::error_code ignored;
    std::filesystem::remove(spec.dir / "qemu.log", ignored);
  }
  NV_ASSIGN_OR_RETURN(VmmHostFiles files, VmmHostFiles::create(spec.dir, options_.jail));
  const auto vm_dir = files.vmDir();
  if (spec.disk_slots > 0) {
    const auto empty = vm_dir / kEmptySlotFile;
    UniqueFd fd(::open(empty.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444));
    if (!fd || ::ftruncate(fd.get(), static_cast<off_t>(kDiskSlotBytes)) != 0) {
      return failErrno("creating " + empty.string());
    }
  }

  SpawnOptions spawn;
  spawn.stdout_path = (spec.dir / "qemu.log").string();
  spawn.stderr_path = "=stdout";
  spawn.new_session = true;
  spawn.die_with_parent = true;
  // The VM as QEMU sees it: host paths, or the jail's.
  VmSpec seen = spec;
  QemuOptions options = options_;
  options.binary = binary.string();
  if (options.accel == Accel::kTcg && options.guest_tsc_khz == 0) {
    options.guest_tsc_khz = hostTscKhz();  // not given by the caller (probeHost caches it)
  }
  seen.dir = vm_dir;
  std::optional<JailSpec> jail;
  if (options_.jail) {
    NV_ASSIGN_OR_RETURN(VmmJail prepared, prepareVmmJail(spec, files, binary, "qemu",
                                                         options_.accel == Accel::kKvm));
    jail = std::move(prepared.jail);
    seen = std::move(prepared.seen);
    options.binary = prepared.binary.string();
    for (auto& share : seen.shares) {
      // An ID-mapped bind (runtime/jail.h): QEMU's uid acts as the directory's owner, so the
      // guest's files land owned by that owner and no other host file becomes writable.
      const std::string target = "/shares/" + share.tag;
      jail->mounts.push_back({.source = share.host_dir, .target = target,
                              .writable = !share.read_only, .map_owner = true});
      share.host_dir = target;
      jail->proc_self = true;  // 9p `local` sets modes through /proc/self/fd
    }
  }
  SandboxCgroup cgroup;
  if (options_.cgroup) {
    NV_ASSIGN_OR_RETURN(cgroup, createVmmCgroup(spec, options_.accel == Accel::kTcg, "qemu",
                                                "QEMU"));
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
                                  std::move(*qmp));
}

}  // namespace nv::runtime
