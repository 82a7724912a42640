// SPDX-License-Identifier: Apache-2.0
// VmConfig: everything nanovisor-vmm needs to build a VM, as plain data with validate().
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/rate_limit.h"
#include "common/result.h"

namespace nv::vmm {

struct DiskConfig {
  std::string path;
  bool read_only = false;
  std::string id;  // virtio-blk GET_ID string (≤ 20 bytes); empty: "nanovisor-vdX"
  DiskRateLimit limit;  // unlimited by default
};

// A virtio-net device on a tap: opened by name, or an fd inherited from the parent.
struct NetConfig {
  std::string tap;              // tap interface name (attached or created with TUNSETIFF)
  std::optional<int> fd;        // or an open tap fd (IFF_TAP|IFF_NO_PI|IFF_VNET_HDR)
  std::optional<std::array<uint8_t, 6>> mac;  // none: 52:54:00 and three random bytes
  DiskRateLimit limit;          // bytes (bps) and frames (pps) per second, each direction
};

struct VmConfig {
  std::string kernel;                    // ELF64 vmlinux or test guest
  std::optional<std::string> initramfs;  // loaded at the top of low RAM
  std::string cmdline = "console=ttyS0 reboot=k panic=1";
  uint32_t cpus = 1;
  uint64_t memory_mib = 128;
  std::vector<DiskConfig> disks;         // virtio-blk, in order (vda, vdb, ...)
  std::vector<NetConfig> nets;           // virtio-net, after the disks
  std::optional<std::string> vsock_uds;  // hybrid vsock Unix socket (guest cid 3)
  bool rng = false;                      // virtio-rng (after the disks and vsock)
  std::string console = "-";             // serial output: "-" stdout, "" none, else a file
  std::optional<std::string> api_sock;
  bool prefer_pvh = false;               // boot through the PVH note when the image has one
  // Test guests only: start every vCPU at the kernel entry (no INIT/SIPI), since on a PVM host
  // a guest cannot take the interrupts an AP bring-up needs.
  bool start_all_vcpus = false;

  // Checks ranges and required fields; one-line errors naming the field.
  [[nodiscard]] Result<void> validate() const;
  // Parses "path[,ro|rw][,id=SERIAL][,bps=RATE[:BURST]][,iops=RATE[:BURST]]" (the --disk flag).
  [[nodiscard]] static Result<DiskConfig> parseDisk(const std::string& spec);
  // Parses "tap=NAME|fd=N[,mac=52:54:00:xx:xx:xx][,bps=RATE[:BURST]][,pps=RATE[:BURST]]"
  // (the --net flag); an error names the bad field.
  [[nodiscard]] static Result<NetConfig> parseNet(const std::string& spec);
};

inline constexpr uint32_t kMaxCpus = 32;
inline constexpr size_t kMaxNets = 4;
inline constexpr uint64_t kMinMemoryMib = 16;
inline constexpr uint64_t kMaxMemoryMib = 64 * 1024;

}  // namespace nv::vmm
