// SPDX-License-Identifier: Apache-2.0
#include "runtime/libvirt_driver.h"

#include <dlfcn.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <thread>

#include <fmt/format.h>

#include "common/logging.h"
#include "common/syscall.h"
#include "common/unique_fd.h"
#include "runtime/host_probe.h"

namespace nv::runtime {
namespace {

using std::chrono::milliseconds;

std::string xmlEscape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '\'': out += "&apos;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

// libvirt's client library is loaded on first use (dlopen), not linked: with it and the ~45
// libraries it pulls in, every CLI and shim process paid ~20 ms at start for a driver that
// the qemu and builtin drivers never use (docs/performance.md).
struct LibvirtApi {
  decltype(&::virSetErrorFunc) setErrorFunc = nullptr;
  decltype(&::virGetLastErrorMessage) getLastErrorMessage = nullptr;
  decltype(&::virGetLastError) getLastError = nullptr;
  decltype(&::virConnectOpen) connectOpen = nullptr;
  decltype(&::virConnectClose) connectClose = nullptr;
  decltype(&::virDomainCreateXML) domainCreateXML = nullptr;
  decltype(&::virDomainLookupByName) domainLookupByName = nullptr;
  decltype(&::virDomainDestroy) domainDestroy = nullptr;
  decltype(&::virDomainSuspend) domainSuspend = nullptr;
  decltype(&::virDomainResume) domainResume = nullptr;
  decltype(&::virDomainFree) domainFree = nullptr;
};

template <class Fn>
void bindSymbol(void* library, const char* name, Fn& fn, std::string& missing) {
  void* symbol = ::dlsym(library, name);
  if (symbol == nullptr) {
    missing += missing.empty() ? name : std::string(", ") + name;
    return;
  }
  static_assert(sizeof fn == sizeof symbol);
  std::memcpy(&fn, &symbol, sizeof fn);  // dlsym's object pointer to the function's type
}

// The loaded API, or the reason it is not there. Loaded once; never unloaded.
const Result<LibvirtApi>& libvirtApi() {
  static const Result<LibvirtApi> api = []() -> Result<LibvirtApi> {
    void* library = ::dlopen("libvirt.so.0", RTLD_NOW | RTLD_LOCAL);
    if (library == nullptr) {
      return fail(Errc::kUnavailable, std::string("cannot load libvirt's client library (") +
                                          ::dlerror() + "); install libvirt0 (make deps)");
    }
    LibvirtApi a;
    std::string missing;
    bindSymbol(library, "virSetErrorFunc", a.setErrorFunc, missing);
    bindSymbol(library, "virGetLastErrorMessage", a.getLastErrorMessage, missing);
    bindSymbol(library, "virGetLastError", a.getLastError, missing);
    bindSymbol(library, "virConnectOpen", a.connectOpen, missing);
    bindSymbol(library, "virConnectClose", a.connectClose, missing);
    bindSymbol(library, "virDomainCreateXML", a.domainCreateXML, missing);
    bindSymbol(library, "virDomainLookupByName", a.domainLookupByName, missing);
    bindSymbol(library, "virDomainDestroy", a.domainDestroy, missing);
    bindSymbol(library, "virDomainSuspend", a.domainSuspend, missing);
    bindSymbol(library, "virDomainResume", a.domainResume, missing);
    bindSymbol(library, "virDomainFree", a.domainFree, missing);
    if (!missing.empty()) {
      return fail(Errc::kUnavailable, "libvirt.so.0 lacks " + missing + " (libvirt too old)");
    }
    return a;
  }();
  return api;
}

// Only where a connection exists, i.e. after openConnection loaded the API.
const LibvirtApi& lv() { return *libvirtApi(); }

void silentLibvirtErrors(void* /*user*/, virErrorPtr /*error*/) {}

std::string lastLibvirtError() {
  const char* msg = lv().getLastErrorMessage();
  return msg != nullptr ? msg : "unknown libvirt error";
}

struct ConnectCloser {
  void operator()(virConnectPtr c) const { lv().connectClose(c); }
};
struct DomainFreer {
  void operator()(virDomainPtr d) const { lv().domainFree(d); }
};
using ConnectPtr = std::unique_ptr<virConnect, ConnectCloser>;
using DomainPtr = std::unique_ptr<virDomain, DomainFreer>;

class LibvirtVm final : public Vm {
 public:
  LibvirtVm(VmSpec spec, ConnectPtr conn, DomainPtr domain, pid_t pid, UniqueFd pidfd)
      : spec_(std::move(spec)),
        conn_(std::move(conn)),
        domain_(std::move(domain)),
        pid_(pid),
        pidfd_(std::move(pidfd)) {}
  ~LibvirtVm() override { kill(); }

  std::filesystem::path agentSocket() const override { return spec_.dir / "agent.sock"; }
  pid_t vmmPid() const override { return pid_; }

  Result<void> wait(milliseconds timeout) override {
    if (exited_) return {};
    pollfd pfd{pidfd_.get(), POLLIN, 0};
    int ready = retryOnEintr([&] { return ::poll(&pfd, 1, static_cast<int>(timeout.count())); });
    if (ready < 0) return failErrno("poll qemu pidfd");
    if (ready == 0) return fail(Errc::kTimeout, "libvirt domain still running");
    exited_ = true;
    reason_ = "libvirt domain ended";
    return {};
  }

  void kill() override {
    if (!domain_) return;
    // A SIGKILL through the pidfd needs no libvirtd (it may be restarting): libvirtd sees its
    // QEMU's monitor close, now or when it is back, and drops the transient domain.
    if (!exited_ && pid_ > 0) {
      ::syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0);
      pollfd pfd{pidfd_.get(), POLLIN, 0};
      (void)retryOnEintr([&] { return ::poll(&pfd, 1, 5000); });
    }
    domain_.reset();
    conn_.reset();
    if (reason_.empty()) reason_ = "killed";
  }

  Result<VmStats> stats() const override { return processStats(pid_); }

  Result<void> pause() override {
    if (!domain_) return fail(Errc::kUnavailable, "domain is gone");
    if (lv().domainSuspend(domain_.get()) != 0) {
      return fail(Errc::kUnavailable, "libvirt suspend: " + lastLibvirtError());
    }
    return {};
  }

  Result<void> resume() override {
    if (!domain_) return fail(Errc::kUnavailable, "domain is gone");
    if (lv().domainResume(domain_.get()) != 0) {
      return fail(Errc::kUnavailable, "libvirt resume: " + lastLibvirtError());
    }
    return {};
  }

  std::string exitReason() const override {
    return reason_.empty() ? "libvirt domain is running" : reason_;
  }

 private:
  VmSpec spec_;
  ConnectPtr conn_;
  DomainPtr domain_;
  pid_t pid_;
  UniqueFd pidfd_;
  bool exited_ = false;
  std::string reason_;
};

Result<pid_t> readPidFile(const std::filesystem::path& path, milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    std::ifstream in(path);
    pid_t pid = 0;
    if (in >> pid && pid > 0) return pid;
    if (std::chrono::steady_clock::now() >= deadline) {
      return fail(Errc::kUnavailable, "libvirt did not write " + path.string());
    }
    std::this_thread::sleep_for(milliseconds(5));
  }
}

}  // namespace

std::string libvirtDomainXml(const VmSpec& spec, const LibvirtOptions& options) {
  const bool kvm = options.accel == Accel::kKvm;
  auto kernel = spec.kernel_bzimage.empty() ? spec.kernel.parent_path() / "bzImage"
                                            : spec.kernel_bzimage;
  std::string cmdline = baseKernelCmdline(/*pci=*/true, "serial");
  if (!kvm && options.guest_tsc_khz != 0) cmdline += " " + tcgClockCmdline(options.guest_tsc_khz);
  if (!spec.cmdline.empty()) cmdline += " " + spec.cmdline;
  std::string x;
  x += "<domain type='" + std::string(kvm ? "kvm" : "qemu") + "'>\n";
  x += "  <name>nanovisor-" + xmlEscape(spec.id) + "</name>\n";
  x += "  <memory unit='MiB'>" + std::to_string(spec.memory_mib) + "</memory>\n";
  x += "  <vcpu>" + std::to_string(spec.cpus) + "</vcpu>\n";
  x += "  <os>\n    <type arch='x86_64' machine='pc'>hvm</type>\n";
  x += "    <kernel>" + xmlEscape(kernel.string()) + "</kernel>\n";
  x += "    <initrd>" + xmlEscape(spec.initramfs.string()) + "</initrd>\n";
  x += "    <cmdline>" + xmlEscape(cmdline) + "</cmdline>\n  </os>\n";
  x += kvm ? "  <cpu mode='host-passthrough'/>\n" : "  <cpu mode='maximum'/>\n";
  x += "  <on_poweroff>destroy</on_poweroff>\n  <on_reboot>destroy</on_reboot>\n";
  x += "  <on_crash>destroy</on_crash>\n";
  x += "  <devices>\n";
  // Disk rate limit: libvirt's <iotune> (QEMU's throttling; the burst over one second).
  std::string iotune;
  auto tune = [&](const char* name, const RateLimit& limit) {
    if (limit.limited()) {
      iotune += fmt::format("<total_{0}_sec>{1}</total_{0}_sec>", name, limit.rate);
      if (limit.burst != 0) {
        iotune += fmt::format("<total_{0}_sec_max>{1}</total_{0}_sec_max>", name, limit.burst);
      }
    }
  };
  tune("bytes", spec.disk_limit.bytes);
  tune("iops", spec.disk_limit.ops);
  if (!iotune.empty()) {
    iotune = "<iotune>" + iotune + "</iotune>";
  }
  char dev = 'a';
  for (const auto& disk : spec.disks) {
    x += "    <disk type='file' device='disk'><driver name='qemu' type='raw'/>";
    x += "<source file='" + xmlEscape(disk.path.string()) + "'/>";
    x += "<target dev='vd" + std::string(1, dev++) + "' bus='virtio'/>";
    x += "<serial>" + xmlEscape(disk.serial) + "</serial>";
    x += std::string(disk.read_only ? "<readonly/>" : "") + iotune + "</disk>\n";
  }
  // Volumes: QEMU runs as libvirt-qemu here, so `squash` (QEMU's security_model=none): the
  // guest's chown requests fail quietly instead of failing every create.
  for (const auto& share : spec.shares) {
    x += "    <filesystem type='mount' accessmode='squash'><source dir='" +
         xmlEscape(share.host_dir.string()) + "'/><target dir='" + xmlEscape(share.tag) + "'/>";
    x += std::string(share.read_only ? "<readonly/>" : "") + "</filesystem>\n";
  }
  x += "    <serial type='file'><source path='" + xmlEscape((spec.dir / "console.log").string()) +
       "' append='on'/><target port='0'/></serial>\n";
  x += "    <channel type='unix'><source mode='bind' path='" +
       xmlEscape((spec.dir / "agent.sock").string()) +
       "'/><target type='virtio' name='io.nanovisor.agent'/></channel>\n";
  x += "    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>\n";
  x += "    <memballoon model='none'/>\n";
  x += "  </devices>\n";
  x += "</domain>\n";
  return x;
}

namespace {

Result<ConnectPtr> openConnection(const std::string& uri) {
  if (!libvirtApi()) return tl::unexpected(libvirtApi().error());
  lv().setErrorFunc(nullptr, silentLibvirtErrors);
  ConnectPtr conn(lv().connectOpen(uri.c_str()));
  if (!conn) {
    return fail(Errc::kUnavailable,
                "libvirt at " + uri + " is not reachable (" + lastLibvirtError() +
                    "); start it with 'virtlogd -d && libvirtd -d' or 'systemctl start libvirtd'");
  }
  return conn;
}

}  // namespace

Result<void> libvirtReachable(const std::string& uri) {
  NV_TRY(openConnection(uri));
  return {};
}

Result<void> destroyLibvirtDomain(const std::string& uri, const std::string& id) {
  NV_ASSIGN_OR_RETURN(ConnectPtr conn, openConnection(uri));
  const std::string name = "nanovisor-" + id;
  DomainPtr domain(lv().domainLookupByName(conn.get(), name.c_str()));
  if (!domain) return {};  // gone already (or never started)
  if (lv().domainDestroy(domain.get()) != 0) {
    virErrorPtr error = lv().getLastError();
    // Not running, or gone meanwhile (its QEMU was just killed and libvirtd dropped it).
    if (error != nullptr &&
        (error->code == VIR_ERR_OPERATION_INVALID || error->code == VIR_ERR_NO_DOMAIN)) {
      return {};
    }
    return fail(Errc::kUnavailable, "libvirt could not destroy domain " + name + ": " +
                                        lastLibvirtError());
  }
  return {};
}

Result<std::unique_ptr<Vm>> LibvirtDriver::create(const VmSpec& spec) {
  NV_TRY(spec.validate());
  NV_ASSIGN_OR_RETURN(ConnectPtr conn, openConnection(options_.uri));
  LibvirtOptions options = options_;
  if (options.accel == Accel::kTcg && options.guest_tsc_khz == 0) {
    options.guest_tsc_khz = hostTscKhz();  // not given by the caller (probeHost caches it)
  }
  std::string xml = libvirtDomainXml(spec, options);
  log::get("libvirt")->debug("domain XML:\n{}", xml);
  // Not AUTODESTROY: libvirtd destroys such domains when it stops or restarts (the client
  // connections close), and a sandbox must outlive a libvirtd restart. The VM's owner kills
  // QEMU itself (kill()); `rm` destroys a domain whose owner died (destroyLibvirtDomain).
  DomainPtr domain(lv().domainCreateXML(conn.get(), xml.c_str(), 0));
  if (!domain) {
    return fail(Errc::kUnavailable, "libvirt could not start the domain: " + lastLibvirtError());
  }
  auto pid = readPidFile("/run/libvirt/qemu/nanovisor-" + spec.id + ".pid", milliseconds(5000));
  if (!pid) return tl::unexpected(pid.error());
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, *pid, 0)));
  if (!pidfd) return failErrno("pidfd_open qemu " + std::to_string(*pid));
  return std::make_unique<LibvirtVm>(spec, std::move(conn), std::move(domain), *pid,
                                     std::move(pidfd));
}

}  // namespace nv::runtime
