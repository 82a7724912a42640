// SPDX-License-Identifier: Apache-2.0
// ExitHandler: VM exits dispatched to buses or turned into stop requests, without KVM.
#include <gtest/gtest.h>

#include "vmm/config/vm_config.h"
#include "vmm/vcpu/vcpu_thread.h"

namespace nv::vmm {
namespace {

class Port final : public BusDevice {
 public:
  void read(uint64_t, std::span<uint8_t> data) override { data[0] = 0x42; }
  void write(uint64_t, std::span<const uint8_t> data) override { last = data[0]; }
  uint8_t last = 0;
};

TEST(ExitHandler, IoAndTerminalExits) {
  Bus pio, mmio;
  auto port = std::make_shared<Port>();
  ASSERT_TRUE(pio.insert(port, 0x80, 1));
  StopReason reason = StopReason::kNone;
  ExitHandler handler(pio, mmio, [&](StopReason r, int, std::string) { reason = r; });
  uint8_t byte = 0;
  EXPECT_TRUE(handler.handle(0, exit::IoIn{0x80, {&byte, 1}}));
  EXPECT_EQ(byte, 0x42);
  const uint8_t seven = 7;
  EXPECT_TRUE(handler.handle(0, exit::IoOut{0x80, {&seven, 1}}));
  EXPECT_EQ(port->last, 7);
  EXPECT_TRUE(handler.handle(0, exit::IoOut{0x81, {&seven, 1}}));
  uint8_t mmio_data[4] = {1, 1, 1, 1};
  EXPECT_TRUE(handler.handle(0, exit::MmioRead{0xD0000000, mmio_data}));
  EXPECT_EQ(mmio_data[0], 0);
  EXPECT_EQ(handler.unhandledAccesses(), 2U);
  EXPECT_TRUE(handler.handle(0, exit::Interrupted{}));
  EXPECT_EQ(reason, StopReason::kNone);
  EXPECT_FALSE(handler.handle(0, exit::Shutdown{}));
  EXPECT_EQ(reason, StopReason::kTripleFault);
  EXPECT_FALSE(handler.handle(0, exit::SystemEvent{2}));
  EXPECT_EQ(reason, StopReason::kReset);
  EXPECT_FALSE(handler.handle(0, exit::InternalError{1}));
  EXPECT_EQ(reason, StopReason::kError);
}

TEST(VmConfig, ValidateAndParseDisk) {
  VmConfig config;
  EXPECT_FALSE(config.validate());
  config.kernel = "k";
  EXPECT_TRUE(config.validate());
  config.cpus = 0;
  EXPECT_FALSE(config.validate());
  config.cpus = 2;
  config.memory_mib = 1;
  EXPECT_FALSE(config.validate());
  auto disk = VmConfig::parseDisk("/a.img,ro");
  ASSERT_TRUE(disk);
  EXPECT_TRUE(disk->read_only);
  EXPECT_FALSE(VmConfig::parseDisk("/a.img,bogus"));
  auto limited = VmConfig::parseDisk("/a.img,rw,bps=1m:4m,iops=100");
  ASSERT_TRUE(limited) << limited.error().message();
  EXPECT_EQ(limited->limit.bytes, (RateLimit{1u << 20, 4u << 20}));
  EXPECT_EQ(limited->limit.ops, (RateLimit{100, 0}));
  auto bad = VmConfig::parseDisk("/a.img,bps=fast");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("bps=fast"), std::string::npos);
  EXPECT_FALSE(VmConfig::parseDisk(",ro"));
  auto with_id = VmConfig::parseDisk("/b.img,ro,id=rootfs");
  ASSERT_TRUE(with_id);
  EXPECT_TRUE(with_id->read_only);
  EXPECT_EQ(with_id->id, "rootfs");
  EXPECT_FALSE(VmConfig::parseDisk("/b.img,id="));
  EXPECT_FALSE(VmConfig::parseDisk("/b.img,id=" + std::string(21, 'x')));
}

}  // namespace
}  // namespace nv::vmm
