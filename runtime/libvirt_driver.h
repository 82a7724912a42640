// SPDX-License-Identifier: Apache-2.0
// The libvirt driver: the same VM as the qemu driver, described as libvirt domain XML and
// started through libvirt's C API, for sites that manage their VMs with libvirt. Machine `pc`
// (libvirt 9.0 refuses microvm domains). Never starts daemons: it says how when they are down.
#pragma once

#include <string>

#include "runtime/qemu_driver.h"
#include "runtime/vm.h"

namespace nv::runtime {

struct LibvirtOptions {
  std::string uri = "qemu:///system";
  Accel accel = Accel::kTcg;
  uint64_t guest_tsc_khz = 0;  // as QemuOptions::guest_tsc_khz
};

// The domain XML for a VM (pure; unit-tested). Values are XML-escaped.
[[nodiscard]] std::string libvirtDomainXml(const VmSpec& spec, const LibvirtOptions& options);

// Opens and closes a connection: Errc::kUnavailable with a how-to-start hint when it fails.
[[nodiscard]] Result<void> libvirtReachable(const std::string& uri);

// Destroys the domain of sandbox `id` if libvirt still runs it (its owner died without killing
// its QEMU); fine when there is none. Errc::kUnavailable when libvirt is not reachable.
[[nodiscard]] Result<void> destroyLibvirtDomain(const std::string& uri, const std::string& id);

class LibvirtDriver final : public Driver {
 public:
  explicit LibvirtDriver(LibvirtOptions options) : options_(std::move(options)) {}
  [[nodiscard]] std::string name() const override { return "libvirt"; }
  [[nodiscard]] Result<std::unique_ptr<Vm>> create(const VmSpec& spec) override;

 private:
  LibvirtOptions options_;
};

}  // namespace nv::runtime
