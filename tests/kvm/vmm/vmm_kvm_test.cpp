// SPDX-License-Identifier: Apache-2.0
// KVM tests: boot the freestanding test guest on the real /dev/kvm and check, from the
// guest's serial output and exit status, serial, boot structures, reset, SMP, virtio-blk.
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/subprocess.h"
#include "vmm/arch/x86_64/boot_params.h"
#include "vmm/vmm.h"

namespace nv::vmm {
namespace {

constexpr int kPass = 0x31;
namespace fs = std::filesystem;

std::string readAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class VmmKvmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int fd = ::open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
      GTEST_SKIP() << "/dev/kvm cannot be opened: " << std::strerror(errno);
    }
    ::close(fd);
    // Parameterised tests are named "Name/0": keep the directory one level deep.
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::replace(name.begin(), name.end(), '/', '_');
    dir_ = fs::temp_directory_path() / ("nv-vmm-kvm-" + std::to_string(::getpid()) + "-" + name);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (!dir_.empty()) {
      fs::remove_all(dir_);
    }
  }

  VmConfig config(const std::string& cmdline) {
    VmConfig c;
    c.kernel = NV_TEST_GUEST_PATH;
    c.cmdline = cmdline;
    c.memory_mib = 128;
    c.console = (dir_ / "console.log").string();
    return c;
  }
  // Boots, runs to the end, returns the exit; the console text lands in console_.
  VmExit boot(const VmConfig& c, std::unique_ptr<Vmm>* keep = nullptr) {
    auto vmm = Vmm::create(c);
    EXPECT_TRUE(vmm) << vmm.error().message();
    if (!vmm) {
      return VmExit{StopReason::kError, -1, "create failed"};
    }
    VmExit exit = (*vmm)->run();
    console_ = readAll(c.console);
    if (keep != nullptr) {
      *keep = std::move(*vmm);
    }
    return exit;
  }

  fs::path dir_;
  std::string console_;
};

TEST_F(VmmKvmTest, SerialGuest_PrintsAndExitsWithPass) {
  std::unique_ptr<Vmm> vmm;
  VmExit exit = boot(config("test=serial"), &vmm);
  EXPECT_EQ(exit.reason, StopReason::kDebugExit) << exit.message;
  EXPECT_EQ(exit.status, kPass);
  EXPECT_NE(console_.find("hello from the nanovisor test guest\n"), std::string::npos) << console_;
  auto marks = vmm->bootMarks();
  ASSERT_FALSE(marks.empty());
  EXPECT_EQ(marks[0].value, 123);
  EXPECT_GT(marks[0].since_start.count(), 0);
}

TEST_F(VmmKvmTest, BootInfoGuest_SeesOurE820CmdlineAndZeroPage) {
  const std::string cmdline = "test=bootinfo quiet x=1";
  std::unique_ptr<Vmm> vmm;
  VmConfig c = config(cmdline);
  c.memory_mib = 256;
  VmExit exit = boot(c, &vmm);
  ASSERT_EQ(exit.status, kPass) << console_;
  EXPECT_NE(console_.find("boot_flag=0xaa55 header=0x53726448 loader=0xff"), std::string::npos);
  EXPECT_NE(console_.find("cmdline=[" + cmdline + "] size=" + std::to_string(cmdline.size() + 1)),
            std::string::npos) << console_;
  // Every e820 entry the guest read must be exactly the map the VMM built, in order.
  std::regex line(R"(e820 0x([0-9a-f]+) 0x([0-9a-f]+) (\d+))");
  std::vector<x86_64::E820Entry> seen;
  for (auto it = std::sregex_iterator(console_.begin(), console_.end(), line);
       it != std::sregex_iterator(); ++it) {
    seen.push_back({std::stoull((*it)[1], nullptr, 16), std::stoull((*it)[2], nullptr, 16),
                    static_cast<uint32_t>(std::stoul((*it)[3]))});
  }
  auto expected = x86_64::buildE820(vmm->memory());
  ASSERT_EQ(seen.size(), expected.size()) << console_;
  for (size_t i = 0; i < seen.size(); ++i) {
    EXPECT_EQ(seen[i].addr, expected[i].addr);
    EXPECT_EQ(seen[i].size, expected[i].size);
    EXPECT_EQ(seen[i].type, expected[i].type);
  }
  EXPECT_EQ(expected.back().addr + expected.back().size, 256ULL << 20);
}

TEST_F(VmmKvmTest, BootInfoGuest_WithInitramfs_SeesItsAddressAndSize) {
  fs::path initrd = dir_ / "initrd.img";
  {
    std::ofstream out(initrd, std::ios::binary);
    std::string data(12345, 'i');
    out << data;
  }
  VmConfig c = config("test=bootinfo");
  c.initramfs = initrd.string();
  std::unique_ptr<Vmm> vmm;
  VmExit exit = boot(c, &vmm);
  ASSERT_EQ(exit.status, kPass) << console_;
  auto addr = x86_64::initramfsAddress(vmm->memory(), 12345);
  ASSERT_TRUE(addr);
  char expect[64];
  std::snprintf(expect, sizeof expect, "ramdisk 0x%llx 0x3039",
                static_cast<unsigned long long>(*addr));
  EXPECT_NE(console_.find(expect), std::string::npos) << console_;
}

TEST_F(VmmKvmTest, PvhEntry_GuestSeesStartInfo) {
  VmConfig c = config("test=bootinfo");
  c.prefer_pvh = true;
  VmExit exit = boot(c);
  EXPECT_EQ(exit.status, kPass) << console_;
  EXPECT_NE(console_.find("pvh magic=0x336ec578"), std::string::npos) << console_;
}

TEST_F(VmmKvmTest, I8042Reset_EndsVmWithResetReason) {
  VmExit exit = boot(config("test=reset"));
  EXPECT_EQ(exit.reason, StopReason::kReset) << exit.message;
  EXPECT_EQ(exit.status, 0);
  EXPECT_NE(console_.find("resetting through the i8042"), std::string::npos);
}

class VmmSmpTest : public VmmKvmTest, public ::testing::WithParamInterface<uint32_t> {};

TEST_P(VmmSmpTest, EveryVcpuRunsAndWritesItsPort) {
  uint32_t cpus = GetParam();
  VmConfig c = config("test=smp cpus=" + std::to_string(cpus));
  c.cpus = cpus;
  c.start_all_vcpus = true;
  std::unique_ptr<Vmm> vmm;
  VmExit exit = boot(c, &vmm);
  ASSERT_EQ(exit.status, kPass) << exit.message << "\n" << console_;
  for (uint32_t i = 0; i < cpus; ++i) {
    EXPECT_NE(console_.find("cpu " + std::to_string(i) + " up"), std::string::npos) << console_;
  }
  EXPECT_NE(console_.find("all " + std::to_string(cpus) + " cpus up"), std::string::npos);
  // Each vCPU wrote 200 + its APIC id (from our CPUID leaf 1) to the boot-timer port.
  std::vector<bool> seen(cpus, false);
  for (const auto& mark : vmm->bootMarks()) {
    if (mark.value >= 200 && mark.value < 200 + cpus) {
      seen[mark.value - 200] = true;
    }
  }
  for (uint32_t i = 0; i < cpus; ++i) {
    EXPECT_TRUE(seen[i]) << "vCPU " << i << " never wrote its port";
  }
}
INSTANTIATE_TEST_SUITE_P(Cpus, VmmSmpTest, ::testing::Values(2U, 4U));

// Must match pattern()/page_tag() in tests/kvm/guests/guest.c.
uint64_t pattern(uint64_t seed, uint64_t i) {
  uint64_t x = ((i + 1) * 0x9E3779B97F4A7C15ULL) ^ seed;
  x ^= x >> 29;
  return x * 0xBF58476D1CE4E5B9ULL;
}

TEST_F(VmmKvmTest, VirtioBlk_Write64MiBThenRead_DiskHoldsExactPattern) {
  fs::path disk = dir_ / "disk.img";
  fs::resize_file((std::ofstream(disk), disk), 80ULL << 20);
  const uint64_t seed = 0x1234;
  VmConfig c = config("test=blk mib=64 seed=" + std::to_string(seed));
  c.memory_mib = 256;
  c.disks.push_back({disk.string(), false});
  std::unique_ptr<Vmm> vmm;
  VmExit exit = boot(c, &vmm);
  ASSERT_EQ(exit.status, kPass) << console_;
  EXPECT_NE(console_.find("id=nanovisor-vda status=0"), std::string::npos) << console_;
  EXPECT_NE(console_.find("past-end write status=1"), std::string::npos);
  EXPECT_NE(console_.find("flush status=0"), std::string::npos);
  EXPECT_NE(console_.find("verified 64 MiB"), std::string::npos);
  // The host checks every byte the guest wrote.
  std::ifstream in(disk, std::ios::binary);
  std::vector<uint64_t> chunk((1 << 20) / 8);
  for (uint64_t c_index = 0; c_index < 64; ++c_index) {
    in.read(reinterpret_cast<char*>(chunk.data()), 1 << 20);
    ASSERT_TRUE(in) << "short disk";
    for (uint64_t i = 0; i < chunk.size(); ++i) {
      uint64_t want = i % 512 == 0 ? (((c_index << 32) | (i / 512)) ^ seed) : pattern(seed, i);
      ASSERT_EQ(chunk[i], want) << "chunk " << c_index << " word " << i;
    }
  }
  // Nothing beyond what the guest wrote.
  in.read(reinterpret_cast<char*>(chunk.data()), 1 << 20);
  for (uint64_t word : chunk) {
    ASSERT_EQ(word, 0U);
  }
  EXPECT_EQ(vmm->virtioViolations(), 0U);
}

TEST_F(VmmKvmTest, VirtioBlk_ScatteredPageReads_AllSucceed) {
  // The guest mode behind make bench's 4 KiB IOPS row.
  fs::path disk = dir_ / "disk.img";
  fs::resize_file((std::ofstream(disk), disk), 16ULL << 20);
  VmConfig c = config("test=blk iops=500 mib=1 seed=3");
  c.disks.push_back({disk.string(), false});
  std::unique_ptr<Vmm> vmm;
  VmExit exit = boot(c, &vmm);
  ASSERT_EQ(exit.status, kPass) << console_;
  EXPECT_NE(console_.find("read 500 x 4 KiB"), std::string::npos) << console_;
  const VmCounters counters = vmm->counters();
  ASSERT_EQ(counters.disks.size(), 1U);
  EXPECT_EQ(counters.disks[0].read_bytes, 500U * 4096);
  EXPECT_EQ(counters.disks[0].bad_requests, 0U);
}

TEST_F(VmmKvmTest, VirtioBlk_RateLimited_GuestWaitsAndDataStaysIntact) {
  fs::path disk = dir_ / "disk.img";
  fs::resize_file((std::ofstream(disk), disk), 8ULL << 20);
  VmConfig c = config("test=blk mib=4 seed=99");
  c.memory_mib = 256;
  auto limited = VmConfig::parseDisk(disk.string() + ",rw,bps=2m");  // burst: one second's worth
  ASSERT_TRUE(limited) << limited.error().message();
  c.disks.push_back(*limited);
  std::unique_ptr<Vmm> vmm;
  const auto start = std::chrono::steady_clock::now();
  VmExit exit = boot(c, &vmm);
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_EQ(exit.status, kPass) << console_;
  EXPECT_NE(console_.find("verified 4 MiB"), std::string::npos) << console_;
  // 4 MiB written and read back (8 MiB) at 2 MiB/s after a 2 MiB burst: the throttle timer
  // had to wake the queue again and again, for at least 3 s.
  const VmCounters counters = vmm->counters();
  ASSERT_EQ(counters.disks.size(), 1U);
  EXPECT_GE(counters.disks[0].throttled, 3U);
  EXPECT_EQ(counters.disks[0].write_bytes, 4ULL << 20);
  EXPECT_GE(took, std::chrono::seconds(3));
}

TEST_F(VmmKvmTest, VirtioBlk_ReadOnlyDisk_WriteGetsIoErrAndFileUnchanged) {
  fs::path disk = dir_ / "ro.img";
  {
    std::ofstream out(disk, std::ios::binary);
    std::string data(4 << 20, 'R');
    out << data;
  }
  VmConfig c = config("test=blk mib=1 ro=1");
  c.disks.push_back({disk.string(), true});
  VmExit exit = boot(c);
  ASSERT_EQ(exit.status, kPass) << console_;
  EXPECT_NE(console_.find("ro write status=1"), std::string::npos) << console_;
  EXPECT_EQ(readAll(disk), std::string(4 << 20, 'R'));
}

TEST_F(VmmKvmTest, PauseResumeAndHostStop) {
  VmConfig c = config("test=smp cpus=2");  // BSP spins waiting for an AP that never starts
  c.cpus = 2;
  auto vmm = Vmm::create(c);
  ASSERT_TRUE(vmm) << vmm.error().message();
  std::thread controller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    (*vmm)->pause();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    (*vmm)->resume();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    (*vmm)->stop(StopReason::kHost, 0, "test stop");
  });
  VmExit exit = (*vmm)->run();
  controller.join();
  EXPECT_EQ(exit.reason, StopReason::kHost);
  EXPECT_EQ(exit.message, "test stop");
}

TEST_F(VmmKvmTest, BadKernel_CreateFailsWithOneLineError) {
  fs::path bad = dir_ / "bad.elf";
  {
    std::ofstream out(bad, std::ios::binary);
    out << "\x7f" "ELF garbage";
  }
  VmConfig c = config("");
  c.kernel = bad.string();
  auto vmm = Vmm::create(c);
  ASSERT_FALSE(vmm);
  EXPECT_NE(vmm.error().message().find("bad kernel ELF"), std::string::npos)
      << vmm.error().message();
  EXPECT_EQ(vmm.error().message().find('\n'), std::string::npos);
}

// --- virtio-vsock through the hybrid Unix socket: the guest echoes whatever it receives.

int unixSocket() { return ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0); }
sockaddr_un unixAddr(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  return addr;
}

// Stops `vmm` if it is still running after `seconds` (so a broken guest cannot hang a test).
class Watchdog {
 public:
  Watchdog(Vmm& vmm, int seconds) : thread_([this, &vmm, seconds] {
    std::unique_lock lock(mutex_);
    if (!cv_.wait_for(lock, std::chrono::seconds(seconds), [this] { return done_; })) {
      vmm.stop(StopReason::kHost, 0, "watchdog");
    }
  }) {}
  ~Watchdog() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

// The hybrid vsock handshake on a connected Unix socket: "CONNECT <port>\n", then the
// VMM's reply line ("OK <host port>" once the guest accepted).
std::string hybridConnect(int fd, int port) {
  const std::string request = "CONNECT " + std::to_string(port) + "\n";
  if (::send(fd, request.data(), request.size(), 0) != static_cast<ssize_t>(request.size())) {
    return "send failed";
  }
  std::string line;
  char ch = 0;
  while (line.size() < 32 && ::recv(fd, &ch, 1, 0) == 1 && ch != '\n') {
    line.push_back(ch);
  }
  return line;
}

// Sends `data` on `fd` while a second thread reads the echo; returns what came back.
std::string echoThrough(int fd, const std::string& data) {
  std::string got;
  std::thread reader([&] {
    char buf[65536];
    while (got.size() < data.size()) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) {
        break;
      }
      got.append(buf, static_cast<size_t>(n));
    }
  });
  size_t sent = 0;
  while (sent < data.size()) {
    ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      break;
    }
    sent += static_cast<size_t>(n);
  }
  reader.join();
  return got;
}

std::string randomBytes(size_t n) {
  std::mt19937_64 rng(42);
  std::string out(n, '\0');
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = rng();
    std::memcpy(out.data() + i, &v, std::min<size_t>(8, n - i));
  }
  return out;
}

TEST_F(VmmKvmTest, Vsock_HostInitiated_Echoes16MiBWithFlowControl) {
  std::string uds = (dir_ / "v.sock").string();
  VmConfig c = config("test=vsock mode=listen port=5000");
  c.vsock_uds = uds;
  auto vmm = Vmm::create(c);
  ASSERT_TRUE(vmm) << vmm.error().message();
  Watchdog watchdog(**vmm, 120);
  VmExit exit;
  std::thread runner([&] { exit = (*vmm)->run(); });
  int fd = unixSocket();
  sockaddr_un addr = unixAddr(uds);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    (*vmm)->stop(StopReason::kHost, 0, "test failed");
    runner.join();
    FAIL() << "connect " << uds << ": " << std::strerror(errno);
  }
  EXPECT_EQ(hybridConnect(fd, 5000), "OK 1073741824");
  const std::string data = randomBytes(16 << 20);
  std::string got = echoThrough(fd, data);
  ::close(fd);  // EOF -> SHUTDOWN to the guest, which then exits
  runner.join();
  EXPECT_EQ(got.size(), data.size());
  EXPECT_TRUE(got == data) << "echoed bytes differ";
  console_ = readAll(c.console);
  EXPECT_EQ(exit.status, kPass) << exit.message << "\n" << console_;
  EXPECT_NE(console_.find("vsock echoed 16777216 bytes"), std::string::npos) << console_;
}

TEST_F(VmmKvmTest, Vsock_GuestInitiated_ConnectsToUdsPortAndEchoes16MiB) {
  std::string uds = (dir_ / "v.sock").string();
  int listener = unixSocket();
  sockaddr_un addr = unixAddr(uds + "_6000");
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener, 1), 0);
  VmConfig c = config("test=vsock mode=connect port=6000");
  c.vsock_uds = uds;
  auto vmm = Vmm::create(c);
  ASSERT_TRUE(vmm) << vmm.error().message();
  Watchdog watchdog(**vmm, 120);
  VmExit exit;
  std::thread runner([&] { exit = (*vmm)->run(); });
  int fd = ::accept(listener, nullptr, nullptr);
  ASSERT_GE(fd, 0);
  const std::string data = randomBytes(16 << 20);
  std::string got = echoThrough(fd, data);
  ::close(fd);
  runner.join();
  ::close(listener);
  EXPECT_TRUE(got == data) << "echoed " << got.size() << " bytes, differ";
  console_ = readAll(c.console);
  EXPECT_EQ(exit.status, kPass) << exit.message << "\n" << console_;
  EXPECT_NE(console_.find("vsock connected to host port 6000"), std::string::npos) << console_;
}

TEST_F(VmmKvmTest, Vsock_GuestConnectWithoutListener_GetsReset) {
  VmConfig c = config("test=vsock mode=connect port=6001");
  c.vsock_uds = (dir_ / "v.sock").string();
  VmExit exit = boot(c);
  EXPECT_EQ(exit.status, 0x32) << console_;
  EXPECT_NE(console_.find("vsock connect refused"), std::string::npos) << console_;
}

TEST_F(VmmKvmTest, VirtioRng_GuestReadsRandomBytesBoundedPerRequest) {
  VmConfig c = config("test=rng");
  c.rng = true;
  std::unique_ptr<Vmm> vmm;
  VmExit exit = boot(c, &vmm);
  ASSERT_EQ(exit.status, kPass) << exit.message << "\n" << console_;
  EXPECT_NE(console_.find("rng got 64 bytes"), std::string::npos) << console_;
  EXPECT_NE(console_.find("rng big request got 65536\n"), std::string::npos) << console_;
  EXPECT_EQ(vmm->rngBytes(), 64U + 65536U);
  EXPECT_EQ(vmm->virtioViolations(), 0U);
}

// The binary: flags, exit status = the guest's debug-exit byte.
int runBinary(const std::string& args, std::string* out) {
  std::string cmd = std::string(NV_VMM_BINARY) + " " + args + " 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (pipe == nullptr) {
    return -1;
  }
  char buf[4096];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) {
    out->append(buf, n);
  }
  int status = ::pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST_F(VmmKvmTest, Binary_HelpVersionAndSerialRun) {
  std::string out;
  EXPECT_EQ(runBinary("--version", &out), 0);
  EXPECT_NE(out.find("nanovisor-vmm"), std::string::npos);
  out.clear();
  EXPECT_EQ(runBinary("--help", &out), 0);
  EXPECT_NE(out.find("--vsock-uds"), std::string::npos);
  out.clear();
  EXPECT_EQ(runBinary(std::string("--kernel ") + NV_TEST_GUEST_PATH +
                          " --cmdline test=serial --memory 64 --console -", &out),
            kPass);
  EXPECT_NE(out.find("hello from the nanovisor test guest"), std::string::npos) << out;
  out.clear();
  EXPECT_EQ(runBinary("--kernel /nonexistent/vmlinux", &out), 1);
  EXPECT_NE(out.find("open /nonexistent/vmlinux"), std::string::npos) << out;
  out.clear();
  EXPECT_EQ(runBinary(std::string("--kernel ") + NV_TEST_GUEST_PATH + " --cpus 0", &out), 1);
  EXPECT_NE(out.find("--cpus 0 outside"), std::string::npos) << out;
}

// --- The binary with its seccomp filters (on by default): the device paths end to end, each
// thread under its allow-list (vmm_api_kvm_test checks the API thread and the SIGSYS hook).

constexpr std::chrono::milliseconds kBinaryDeadline{240000};  // an event wait, not a timing

Subprocess spawnBinary(const std::vector<std::string>& args, const fs::path& log) {
  SpawnOptions spawn;
  spawn.argv = {NV_VMM_BINARY, "--kernel", NV_TEST_GUEST_PATH};
  spawn.argv.insert(spawn.argv.end(), args.begin(), args.end());
  spawn.stdout_path = log.string();
  spawn.stderr_path = "=stdout";
  spawn.die_with_parent = true;
  auto process = Subprocess::spawn(spawn);
  EXPECT_TRUE(process) << process.error().message();
  return std::move(*process);
}

// The exit code, or -1 when it did not end in time or was killed (e.g. SIGSYS).
int waitBinary(Subprocess& vmm) {
  auto status = vmm.wait(kBinaryDeadline);
  if (!status) {
    (void)vmm.signal(SIGKILL);
    return -1;
  }
  return WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
}

TEST_F(VmmKvmTest, BinarySeccomp_VirtioBlkWrite64MiBThenRead) {
  fs::path disk = dir_ / "disk.img";
  fs::resize_file((std::ofstream(disk), disk), 80ULL << 20);
  Subprocess vmm = spawnBinary({"--cmdline", "test=blk mib=64 seed=4660", "--memory", "256",
                                "--disk", disk.string(), "--console",
                                (dir_ / "console.log").string()},
                               dir_ / "vmm.log");
  EXPECT_EQ(waitBinary(vmm), kPass) << readAll(dir_ / "vmm.log");
  console_ = readAll(dir_ / "console.log");
  EXPECT_NE(console_.find("flush status=0"), std::string::npos) << console_;
  EXPECT_NE(console_.find("verified 64 MiB"), std::string::npos) << console_;
  std::ifstream in(disk, std::ios::binary);
  uint64_t second_word = 0;
  in.seekg(8);
  in.read(reinterpret_cast<char*>(&second_word), 8);
  EXPECT_EQ(second_word, pattern(4660, 1));
}

TEST_F(VmmKvmTest, BinarySeccomp_VsockHostInitiatedEchoes16MiB) {
  const std::string uds = (dir_ / "v.sock").string();
  Subprocess vmm = spawnBinary({"--cmdline", "test=vsock mode=listen port=5000", "--memory",
                                "128", "--vsock-uds", uds, "--console",
                                (dir_ / "console.log").string()},
                               dir_ / "vmm.log");
  int fd = unixSocket();
  sockaddr_un addr = unixAddr(uds);
  // The socket appears once the VM is built: retry the connect until then.
  bool connected = false;
  for (int i = 0; i < 12000 && !connected && !vmm.exited(); ++i) {
    connected = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    if (!connected) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(connected) << readAll(dir_ / "vmm.log");
  EXPECT_EQ(hybridConnect(fd, 5000), "OK 1073741824");
  const std::string data = randomBytes(16 << 20);
  std::string got = echoThrough(fd, data);
  ::close(fd);
  EXPECT_EQ(waitBinary(vmm), kPass) << readAll(dir_ / "vmm.log");
  EXPECT_TRUE(got == data) << "echoed " << got.size() << " bytes, differ";
}

TEST_F(VmmKvmTest, BinarySeccomp_VsockGuestInitiatedEchoes16MiB) {
  const std::string uds = (dir_ / "v.sock").string();
  int listener = unixSocket();
  sockaddr_un addr = unixAddr(uds + "_6000");
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener, 1), 0);
  Subprocess vmm = spawnBinary({"--cmdline", "test=vsock mode=connect port=6000", "--memory",
                                "128", "--vsock-uds", uds, "--console",
                                (dir_ / "console.log").string()},
                               dir_ / "vmm.log");
  int fd = ::accept(listener, nullptr, nullptr);
  ASSERT_GE(fd, 0);
  const std::string data = randomBytes(16 << 20);
  std::string got = echoThrough(fd, data);
  ::close(fd);
  ::close(listener);
  EXPECT_EQ(waitBinary(vmm), kPass) << readAll(dir_ / "vmm.log");
  EXPECT_TRUE(got == data) << "echoed " << got.size() << " bytes, differ";
}

TEST_F(VmmKvmTest, Binary_ProbeAnswersYesOrNoWithReason) {
  std::string out;
  int code = runBinary("probe", &out);
  ASSERT_TRUE(code == 0 || code == 1) << out;
  EXPECT_EQ(out.rfind(code == 0 ? "yes: " : "no: ", 0), 0U) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << "one line: " << out;
  if (code == 1) {
    // The PVM hosts this project's CI runs on: the exception through the IDT ends the VM.
    EXPECT_NE(out.find("KVM_EXIT_INTERNAL_ERROR"), std::string::npos) << out;
  }
}

}  // namespace
}  // namespace nv::vmm
