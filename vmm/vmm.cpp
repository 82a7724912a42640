// SPDX-License-Identifier: Apache-2.0
// The VM builder and lifecycle.
#include "vmm/vmm.h"

#include <fcntl.h>
#include <sys/random.h>

#include <algorithm>
#include <unistd.h>

#include <fmt/format.h>

#include "common/logging.h"
#include "common/syscall.h"
#include "vmm/api/api_validate.h"
#include "vmm/arch/x86_64/boot_params.h"
#include "vmm/arch/x86_64/cpuid.h"
#include "vmm/arch/x86_64/layout.h"
#include "vmm/arch/x86_64/mptable.h"
#include "vmm/arch/x86_64/regs.h"
#include "vmm/devices/virtio/block/block.h"
#include "vmm/devices/virtio/device_loop.h"
#include "vmm/devices/virtio/net/net.h"
#include "vmm/devices/virtio/net/tap.h"
#include "vmm/devices/virtio/rng/rng.h"
#include "vmm/devices/virtio/vsock/vsock.h"
#include "vmm/loader/elf_loader.h"

namespace nv::vmm {
namespace {

constexpr uint64_t kMaxKernelBytes = 512ULL << 20;
constexpr uint64_t kMaxInitramfsBytes = 1ULL << 30;

// Raises a GSI through an eventfd registered with KVM_IRQFD.
class EventFdIrq final : public IrqLine {
 public:
  explicit EventFdIrq(EventFd fd) : fd_(std::move(fd)) {}
  void trigger() override { (void)fd_.write(1); }
  [[nodiscard]] int fd() const { return fd_.fd(); }

 private:
  EventFd fd_;
};

}  // namespace

Vmm::~Vmm() {
  for (auto& vcpu : vcpus_) {
    vcpu->stop();
  }
  for (auto& vcpu : vcpus_) {
    vcpu->join();
  }
  if (device_loop_) {
    device_loop_->stop();
  }
  for (auto& transport : transports_) {
    transport->device().reset();
  }
  if (owns_console_fd_ && console_fd_ >= 0) {
    ::close(console_fd_);
  }
}

Result<std::unique_ptr<Vmm>> Vmm::create(const VmConfig& config,
                                         std::chrono::steady_clock::time_point start) {
  NV_TRY(config.validate());
  std::unique_ptr<Vmm> vmm(new Vmm());
  vmm->config_ = config;
  vmm->start_ = start;
  NV_TRY(vmm->build(config, start));
  return vmm;
}

Result<void> Vmm::build(const VmConfig& config, std::chrono::steady_clock::time_point start) {
  // 1. Guest RAM and the KVM VM (TSS, identity map, irqchip, PIT).
  NV_ASSIGN_OR_RETURN(GuestMemoryMmap memory,
                      GuestMemoryMmap::create(x86_64::ramLayout(config.memory_mib << 20)));
  memory_ = std::make_unique<GuestMemoryMmap>(std::move(memory));
  NV_ASSIGN_OR_RETURN(kvm::KvmSystem system, kvm::KvmSystem::open());
  kvm_.emplace(std::move(system));
  NV_ASSIGN_OR_RETURN(kvm::KvmVm vm, kvm::KvmVm::create(*kvm_));
  vm_.emplace(std::move(vm));

  // 2. vCPUs (after the irqchip), then memory slots.
  std::vector<std::unique_ptr<kvm::KvmVcpu>> vcpus;
  for (uint32_t id = 0; id < config.cpus; ++id) {
    NV_ASSIGN_OR_RETURN(auto vcpu, vm_->createVcpu(id));
    vcpus.push_back(std::move(vcpu));
  }
  NV_TRY(vm_->mapMemory(*memory_));

  // 3. Legacy devices on the PIO bus.
  auto makeIrq = [&](uint32_t gsi) -> Result<IrqLine*> {
    NV_ASSIGN_OR_RETURN(EventFd fd, EventFd::create(0));
    NV_TRY(vm_->registerIrqfd(fd.fd(), gsi));
    irqs_.push_back(std::make_unique<EventFdIrq>(std::move(fd)));
    return irqs_.back().get();
  };
  if (config.console == "-") {
    console_fd_ = STDOUT_FILENO;
  } else if (!config.console.empty()) {
    console_fd_ = ::open(config.console.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (console_fd_ < 0) {
      return failErrno(fmt::format("open console {}", config.console));
    }
    owns_console_fd_ = true;
  }
  NV_ASSIGN_OR_RETURN(IrqLine * serial_irq, makeIrq(Serial::kIrq));
  int console_fd = console_fd_;
  serial_ = std::make_shared<Serial>(
      [console_fd](std::span<const uint8_t> bytes) {
        if (console_fd >= 0) {
          (void)retryOnEintr([&] { return ::write(console_fd, bytes.data(), bytes.size()); });
        }
      },
      serial_irq);
  NV_TRY(pio_.insert(serial_, Serial::kPortBase, Serial::kPortLen));
  NV_ASSIGN_OR_RETURN(IrqLine * kbd_irq, makeIrq(I8042::kIrq));
  i8042_ = std::make_shared<I8042>(
      [this] { stop(StopReason::kReset, 0, "guest reset through the i8042"); }, kbd_irq);
  NV_TRY(pio_.insert(i8042_, I8042::kPortBase, I8042::kPortLen));
  boot_timer_ = std::make_shared<BootTimer>(start);
  NV_TRY(pio_.insert(boot_timer_, BootTimer::kPort, 1));
  NV_TRY(pio_.insert(std::make_shared<DebugExit>([this](uint8_t status) {
                       stop(StopReason::kDebugExit, status,
                            fmt::format("guest wrote {} to the debug-exit port", status));
                     }),
                     DebugExit::kPort, 1));

  // 4. virtio-mmio devices, announced on the cmdline.
  device_loop_ = std::make_unique<DeviceLoop>();
  std::string cmdline = config.cmdline;
  NV_TRY(addDisks(config, cmdline));
  NV_TRY(addNets(config, cmdline));
  if (config.vsock_uds) {
    NV_ASSIGN_OR_RETURN(auto vsock, virtio::vsock::Vsock::create(device_loop_->context(),
                                                                  kGuestCid, *config.vsock_uds));
    NV_TRY(addVirtioDevice(vsock, cmdline));
  }
  if (config.rng) {
    rng_ = std::make_shared<virtio::rng::Rng>();
    NV_TRY(addVirtioDevice(rng_, cmdline));
  }

  // 5. Kernel, boot structures and vCPU registers.
  NV_TRY(loadKernel(config, cmdline));
  guest_cmdline_ = cmdline;
  NV_ASSIGN_OR_RETURN(auto supported, kvm_->supportedCpuid());
  x86_64::BootMode mode = pvh_ ? x86_64::BootMode::kPvh : x86_64::BootMode::kLinux64;
  exit_handler_ = std::make_unique<ExitHandler>(
      pio_, mmio_, [this](StopReason reason, int status, std::string message) {
        stop(reason, status, std::move(message));
      });
  for (auto& vcpu : vcpus) {
    NV_TRY(vcpu->setCpuid(x86_64::filterCpuid(supported, vcpu->id(), config.cpus)));
    NV_TRY(vcpu->setMsrs(x86_64::bootMsrs()));
    NV_TRY(vcpu->setupLint());
    if (vcpu->id() == 0 || config.start_all_vcpus) {
      NV_TRY(vcpu->setRegs(x86_64::bootRegs(entry_, mode)));
      NV_TRY(vcpu->setDefaultFpu());
      NV_ASSIGN_OR_RETURN(SpecialRegisters sregs, vcpu->getSregs());
      NV_TRY(vcpu->setSregs(x86_64::bootSregs(sregs, mode)));
      if (vcpu->id() != 0) {
        NV_TRY(vcpu->setRunnable());
      }
    }
    vcpus_.push_back(std::make_unique<VcpuThread>(std::move(vcpu), *exit_handler_));
  }
  return {};
}

Result<void> Vmm::addDisks(const VmConfig& config, std::string& cmdline) {
  for (size_t i = 0; i < config.disks.size(); ++i) {
    const DiskConfig& disk = config.disks[i];
    std::string id = disk.id.empty() ? fmt::format("nanovisor-vd{}", char('a' + i)) : disk.id;
    NV_ASSIGN_OR_RETURN(auto block, virtio::block::Block::open(disk.path, disk.read_only,
                                                               std::move(id), disk.limit));
    NV_TRY(addVirtioDevice(block, cmdline));
    if (block->throttleFd() >= 0) {
      device_loop_->watch(block->throttleFd(), [block] { block->processQueue(); });
    }
    disks_.push_back(Disk{block, transports_.back()});
  }
  return {};
}

Result<void> Vmm::addNets(const VmConfig& config, std::string& cmdline) {
  for (size_t i = 0; i < config.nets.size(); ++i) {
    const NetConfig& net = config.nets[i];
    UniqueFd tap;
    if (net.fd) {
      NV_ASSIGN_OR_RETURN(tap, virtio::net::adoptTap(*net.fd));
    } else {
      NV_ASSIGN_OR_RETURN(tap, virtio::net::openTap(net.tap));
    }
    virtio::net::MacAddress mac{0x52, 0x54, 0x00, 0, 0, 0};
    if (net.mac) {
      mac = *net.mac;
    } else if (::getrandom(mac.data() + 3, 3, 0) != 3) {
      return failErrno("getrandom for a virtio-net MAC address");
    }
    NV_ASSIGN_OR_RETURN(auto device,
                        virtio::net::Net::create(device_loop_->context(), std::move(tap), mac,
                                                 net.limit, net.limit));
    NV_TRY(addVirtioDevice(device, cmdline));
    if (device->rxThrottleFd() >= 0) {
      device_loop_->watch(device->rxThrottleFd(), [device] { device->processRx(); });
    }
    if (device->txThrottleFd() >= 0) {
      device_loop_->watch(device->txThrottleFd(), [device] { device->processTx(); });
    }
    log::get("vmm")->info("virtio-net {}: {} mac {}", i,
                          net.fd ? fmt::format("fd {}", *net.fd) : "tap " + net.tap,
                          virtio::net::formatMac(mac));
    nets_.push_back(device);
  }
  return {};
}

Result<void> Vmm::addVirtioDevice(std::shared_ptr<virtio::VirtioDevice> device,
                                  std::string& cmdline) {
  auto index = static_cast<uint32_t>(transports_.size());
  if (index >= x86_64::kMaxVirtioDevices) {
    return fail(Errc::kTooLarge, "too many virtio devices");
  }
  uint64_t base = x86_64::kVirtioMmioBase + index * virtio::MmioTransport::kWindowSize;
  uint32_t gsi = x86_64::kVirtioIrqBase + index;
  NV_ASSIGN_OR_RETURN(EventFd irq_fd, EventFd::create(0));
  NV_TRY(vm_->registerIrqfd(irq_fd.fd(), gsi));
  irqs_.push_back(std::make_unique<EventFdIrq>(std::move(irq_fd)));
  auto transport = std::make_shared<virtio::MmioTransport>(device, *memory_, irqs_.back().get());
  NV_TRY(mmio_.insert(transport, base, virtio::MmioTransport::kWindowSize));
  // QueueNotify writes become ioeventfds handled on the device loop, not vCPU exits.
  auto queues = static_cast<uint32_t>(device->queueMaxSizes().size());
  for (uint32_t q = 0; q < queues; ++q) {
    NV_ASSIGN_OR_RETURN(EventFd notify, EventFd::create(0));
    NV_TRY(vm_->registerIoeventfd(notify.fd(), base + virtio::MmioTransport::kQueueNotifyOffset,
                                  q));
    device_loop_->watch(notify.fd(), [device, q] { device->notify(q); });
    notify_fds_.push_back(std::move(notify));
  }
  transports_.push_back(transport);
  cmdline += fmt::format(" virtio_mmio.device=4K@{:#x}:{}", base, gsi);
  return {};
}

Result<void> Vmm::loadKernel(const VmConfig& config, const std::string& cmdline) {
  NV_ASSIGN_OR_RETURN(std::string image, loader::readFile(config.kernel, kMaxKernelBytes));
  auto loaded = loader::loadElf(
      std::span(reinterpret_cast<const uint8_t*>(image.data()), image.size()), *memory_);
  if (!loaded) {
    return tl::unexpected(loaded.error().wrap(config.kernel));
  }
  pvh_ = config.prefer_pvh && loaded->pvh_entry.has_value();
  entry_ = pvh_ ? *loaded->pvh_entry : loaded->entry;
  std::optional<x86_64::Initramfs> initramfs;
  if (config.initramfs) {
    NV_ASSIGN_OR_RETURN(std::string data, loader::readFile(*config.initramfs, kMaxInitramfsBytes));
    NV_ASSIGN_OR_RETURN(uint64_t addr, x86_64::initramfsAddress(*memory_, data.size()));
    if (addr < loaded->end) {
      return fail(Errc::kTooLarge, "initramfs overlaps the kernel; give the VM more memory");
    }
    NV_TRY(memory_->write(GuestAddress(addr), std::span(reinterpret_cast<const uint8_t*>(
                                                            data.data()), data.size())));
    initramfs = x86_64::Initramfs{addr, data.size()};
  }
  NV_TRY(x86_64::writeCmdline(*memory_, cmdline));
  NV_TRY(x86_64::writeMpTable(*memory_, config.cpus));
  NV_TRY(x86_64::writeBootTables(*memory_, pvh_ ? x86_64::BootMode::kPvh
                                                : x86_64::BootMode::kLinux64));
  if (pvh_) {
    NV_TRY(x86_64::writePvhStartInfo(*memory_, initramfs));
  } else {
    NV_TRY(x86_64::writeZeroPage(*memory_, cmdline, initramfs));
  }
  return {};
}

VmExit Vmm::run(const ThreadHooks& hooks) {
  VcpuThread::installKickSignal();
  device_loop_->start(hooks.devices);
  for (auto& vcpu : vcpus_) {
    vcpu->start(hooks.vcpu);
  }
  if (hooks.main) {
    hooks.main();
  }
  VmExit result;
  {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return exit_.has_value(); });
    result = *exit_;
  }
  for (auto& vcpu : vcpus_) {
    vcpu->stop();
  }
  for (auto& vcpu : vcpus_) {
    vcpu->join();
  }
  device_loop_->stop();
  return result;
}

void Vmm::stop(StopReason reason, int status, std::string message) {
  std::lock_guard lock(mutex_);
  if (!exit_) {
    exit_ = VmExit{reason, status, std::move(message)};
    cv_.notify_all();
  }
}

void Vmm::pause() {
  for (auto& vcpu : vcpus_) {
    vcpu->pause();
  }
}

void Vmm::resume() {
  for (auto& vcpu : vcpus_) {
    vcpu->resume();
  }
}

Result<void> Vmm::resumeChecked() {
  std::lock_guard lock(state_mutex_);
  resume();
  paused_ = false;
  return {};
}

Result<void> Vmm::pauseAndWait(std::chrono::milliseconds timeout) {
  std::lock_guard lock(state_mutex_);
  if (stopping_.load()) {
    return fail(Errc::kUnavailable, "the VM is stopping; it cannot be paused");
  }
  pause();
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (auto& vcpu : vcpus_) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (!vcpu->waitParked(std::max(left, std::chrono::milliseconds(0)))) {
      return fail(Errc::kTimeout, fmt::format("vCPU {} did not park within {} ms",
                                              vcpu->vcpu().id(), timeout.count()));
    }
  }
  paused_ = true;
  return {};
}

void Vmm::sendCtrlAltDel() { i8042_->sendCtrlAltDel(); }

void Vmm::requestShutdown() {
  std::lock_guard lock(state_mutex_);
  stopping_.store(true);
  if (paused_) {
    resume();
    paused_ = false;
  }
  sendCtrlAltDel();
}

VmState Vmm::state() {
  {
    std::lock_guard lock(mutex_);
    if (exit_) {
      return VmState::kStopping;
    }
  }
  if (stopping_.load()) {
    return VmState::kStopping;
  }
  std::lock_guard lock(state_mutex_);
  return paused_ ? VmState::kPaused : VmState::kRunning;
}

std::vector<std::string> Vmm::netMacs() const {
  std::vector<std::string> macs;
  for (const auto& net : nets_) macs.push_back(virtio::net::formatMac(net->mac()));
  return macs;
}

Result<uint64_t> Vmm::replaceDiskMedia(uint32_t index, const std::string& path,
                                       bool read_only) {
  std::lock_guard lock(state_mutex_);
  NV_TRY(api::validateDiskIndex(index, disks_.size()));
  Disk& disk = disks_[index];
  NV_TRY(api::validateMediaPath(path, disk.block->readOnly(), read_only));
  auto capacity = disk.block->replaceMedia(path, read_only);
  if (!capacity) {
    return tl::unexpected(capacity.error().wrap(fmt::format("disk {}", index)));
  }
  disk.transport->configChanged();
  log::get("vmm")->info("disk {} media replaced by {} ({} sectors)", index, path, *capacity);
  return *capacity;
}

std::vector<DiskDescription> Vmm::disks() {
  std::vector<DiskDescription> out;
  for (size_t i = 0; i < disks_.size(); ++i) {
    auto& block = *disks_[i].block;
    out.push_back({static_cast<uint32_t>(i), block.path(), block.readOnly(),
                   block.capacitySectors(), block.id()});
  }
  return out;
}

VmCounters Vmm::counters() {
  VmCounters c;
  c.state = state();
  c.uptime = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - start_);
  for (auto& vcpu : vcpus_) {
    c.vcpu_exits.push_back(vcpu->exits());
  }
  for (size_t i = 0; i < disks_.size(); ++i) {
    auto& stats = disks_[i].block->stats();
    c.disks.push_back({static_cast<uint32_t>(i), stats.requests.load(), stats.read_bytes.load(),
                       stats.write_bytes.load(), stats.bad_requests.load(),
                       stats.queue_errors.load(), stats.media_changes.load(),
                       stats.throttled.load()});
  }
  for (size_t i = 0; i < nets_.size(); ++i) {
    auto& s = nets_[i]->stats();
    c.nets.push_back({static_cast<uint32_t>(i), s.tx_frames.load(), s.tx_bytes.load(),
                      s.rx_frames.load(), s.rx_bytes.load(), s.tx_dropped.load(),
                      s.rx_dropped.load(), s.bad_rx_buffers.load(), s.tap_errors.load(),
                      s.queue_errors.load(), s.tx_throttled.load(), s.rx_throttled.load()});
  }
  c.virtio_violations = virtioViolations();
  c.unhandled_accesses = exit_handler_ ? exit_handler_->unhandledAccesses() : 0;
  c.rng_bytes = rngBytes();
  for (const auto& mark : boot_timer_->marks()) {
    if (mark.value == BootTimer::kBootComplete) {
      c.boot_time = mark.since_start;
      break;
    }
  }
  return c;
}

uint64_t Vmm::rngBytes() { return rng_ ? rng_->stats().bytes.load() : 0; }

uint64_t Vmm::virtioViolations() {
  uint64_t total = 0;
  for (auto& transport : transports_) {
    total += transport->violations();
  }
  return total;
}

}  // namespace nv::vmm
