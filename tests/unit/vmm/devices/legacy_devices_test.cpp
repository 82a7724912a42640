// SPDX-License-Identifier: Apache-2.0
// Tests for the 8250 UART, the i8042 and the debug ports.
#include <gtest/gtest.h>

#include <string>

#include "tests/support/fake_irq_line.h"
#include "vmm/devices/debug_ports.h"
#include "vmm/devices/i8042.h"
#include "vmm/devices/serial.h"

namespace nv::vmm {
namespace {

using testing::FakeIrqLine;

uint8_t in(BusDevice& dev, uint64_t offset) {
  uint8_t v = 0;
  dev.read(offset, std::span<uint8_t>(&v, 1));
  return v;
}
void out(BusDevice& dev, uint64_t offset, uint8_t value) {
  dev.write(offset, std::span<const uint8_t>(&value, 1));
}

TEST(Serial, WriteThr_GoesToSink) {
  std::string got;
  Serial serial([&](std::span<const uint8_t> b) { got.append(b.begin(), b.end()); }, nullptr);
  for (char c : std::string("hi\n")) {
    out(serial, 0, static_cast<uint8_t>(c));
  }
  EXPECT_EQ(got, "hi\n");
  EXPECT_EQ(in(serial, 5) & 0x60, 0x60);  // THRE | TEMT
}

TEST(Serial, DlabSet_WritesDivisorNotOutput) {
  std::string got;
  Serial serial([&](std::span<const uint8_t> b) { got.append(b.begin(), b.end()); }, nullptr);
  out(serial, 3, 0x80);
  out(serial, 0, 0x01);
  out(serial, 1, 0x00);
  EXPECT_EQ(in(serial, 0), 0x01);
  out(serial, 3, 0x03);
  EXPECT_TRUE(got.empty());
}

TEST(Serial, Loopback_MsrMirrorsMcrAndDataLoopsBack) {
  std::string got;
  Serial serial([&](std::span<const uint8_t> b) { got.append(b.begin(), b.end()); }, nullptr);
  out(serial, 4, 0x10 | 0x0A);  // LOOP | RTS | OUT2, as Linux autoconfig does
  EXPECT_EQ(in(serial, 6) & 0xF0, 0x90);
  out(serial, 0, 'x');
  EXPECT_EQ(in(serial, 5) & 1, 1);
  EXPECT_EQ(in(serial, 0), 'x');
  EXPECT_TRUE(got.empty());
}

TEST(Serial, Input_RaisesRxInterruptWhenEnabled) {
  FakeIrqLine irq;
  Serial serial(nullptr, &irq);
  const uint8_t data[] = {'a', 'b'};
  serial.enqueueInput(data);
  EXPECT_EQ(irq.count, 0);
  out(serial, 1, 0x01);  // IER: RX available
  EXPECT_EQ(irq.count, 1);
  EXPECT_EQ(in(serial, 2) & 0x0F, 0x04);
  EXPECT_EQ(in(serial, 0), 'a');
  EXPECT_EQ(in(serial, 0), 'b');
  EXPECT_EQ(in(serial, 5) & 1, 0);
  EXPECT_EQ(in(serial, 2) & 0x0F, 0x01);
}

TEST(Serial, ThrEmptyInterrupt_ClearedByIirRead) {
  FakeIrqLine irq;
  Serial serial(nullptr, &irq);
  out(serial, 1, 0x02);
  EXPECT_EQ(irq.count, 1);
  EXPECT_EQ(in(serial, 2) & 0x0F, 0x02);
  EXPECT_EQ(in(serial, 2) & 0x0F, 0x01);
  out(serial, 0, 'z');
  EXPECT_EQ(irq.count, 2);
}

TEST(Serial, Input_BeyondLimit_Dropped) {
  Serial serial(nullptr, nullptr);
  std::vector<uint8_t> big(Serial::kMaxInput + 100, 'q');
  serial.enqueueInput(big);
  size_t count = 0;
  while ((in(serial, 5) & 1) != 0) {
    in(serial, 0);
    ++count;
  }
  EXPECT_EQ(count, Serial::kMaxInput);
}

TEST(Serial, WideAccess_Ignored) {
  std::string got;
  Serial serial([&](std::span<const uint8_t> b) { got.append(b.begin(), b.end()); }, nullptr);
  const uint8_t wide[4] = {'a', 'b', 'c', 'd'};
  serial.write(0, wide);
  EXPECT_TRUE(got.empty());
}

TEST(I8042, ResetCommand_CallsOnReset) {
  int resets = 0;
  I8042 kbd([&] { ++resets; }, nullptr);
  out(kbd, 4, 0x20);
  EXPECT_EQ(in(kbd, 4) & 1, 1);
  EXPECT_EQ(in(kbd, 0), 0x01);
  EXPECT_EQ(resets, 0);
  out(kbd, 4, I8042::kCmdResetCpu);
  EXPECT_EQ(resets, 1);
}

TEST(I8042, OutputPortResetBitCleared_Resets) {
  int resets = 0;
  I8042 kbd([&] { ++resets; }, nullptr);
  out(kbd, 4, 0xD1);
  out(kbd, 0, 0x00);
  EXPECT_EQ(resets, 1);
}

TEST(I8042, CommandByteWriteAndSelfTest) {
  I8042 kbd(nullptr, nullptr);
  out(kbd, 4, 0x60);
  out(kbd, 0, 0x47);
  out(kbd, 4, 0x20);
  EXPECT_EQ(in(kbd, 0), 0x47);
  out(kbd, 4, 0xAA);
  EXPECT_EQ(in(kbd, 0), 0x55);
  EXPECT_EQ(in(kbd, 4) & 1, 0);
}

TEST(I8042, CtrlAltDel_QueuesScancodesAndRaisesIrq) {
  FakeIrqLine irq;
  I8042 kbd(nullptr, &irq);
  kbd.sendCtrlAltDel();
  EXPECT_EQ(irq.count, 1);
  EXPECT_EQ(in(kbd, 0), 0x14);
  EXPECT_EQ(in(kbd, 0), 0x11);
  EXPECT_EQ(in(kbd, 0), 0xE0);
  EXPECT_EQ(in(kbd, 0), 0x71);
}

TEST(BootTimer, Write_RecordsMarkWithElapsedTime) {
  auto start = std::chrono::steady_clock::now() - std::chrono::milliseconds(5);
  BootTimer timer(start);
  out(timer, 0, BootTimer::kBootComplete);
  auto marks = timer.marks();
  ASSERT_EQ(marks.size(), 1U);
  EXPECT_EQ(marks[0].value, 123);
  EXPECT_GE(marks[0].since_start.count(), 5000);
}

TEST(DebugExit, Write_ReportsStatus) {
  int status = -1;
  DebugExit dev([&](uint8_t v) { status = v; });
  out(dev, 0, 42);
  EXPECT_EQ(status, 42);
}

}  // namespace
}  // namespace nv::vmm
