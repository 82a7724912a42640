// SPDX-License-Identifier: Apache-2.0
// docs/security.md, "denial of service between tenants", measured: a workload that fork-bombs,
// fills its memory, writes its writable layer flat out or floods stdout runs in a sandbox of
// its own (default size and host cgroup: cpu quota = its vCPUs, memory = guest RAM + VMM
// overhead), and a second, quiet sandbox keeps its exec latency and its writable-layer write
// throughput within 2x of what it measured with no neighbour. Issue #7 requires this bound, so
// it is asserted: medians of several samples after a warm-up, the same method every time, and
// an idle baseline taken right before each neighbour starts (the shared 2-core CI hosts' own
// load drifts over the minutes this takes). The numbers are printed for docs/security.md.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/subprocess.h"
#include "tests/support/nanovisor_env.h"

namespace nv {
namespace {

using std::chrono::milliseconds;
using Env = test::NanovisorEnv;

Env& env() {
  static Env e = test::makeNanovisorEnv("noisy-e2e", "host cgroups for the VMMs need root");
  return e;
}

RunResult nv(const std::string& args, milliseconds timeout = milliseconds(120000)) {
  return env().nv(args, timeout);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// CPU seconds (user + system, all threads) process `pid` has used so far; -1 if it is gone.
double cpuSeconds(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), {});
  const auto paren = stat.rfind(')');
  if (paren == std::string::npos) return -1;
  std::istringstream fields(stat.substr(paren + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; fields >> field; ++i) {
    if (i == 14 || i == 15) ticks += std::stod(field);
    if (i == 15) break;
  }
  return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

struct Measured {
  double exec_ms = 0;     // median wall time of `nanovisor exec quiet true`
  double write_mbps = 0;  // median MB/s of a 32 MiB dd into the writable layer
};

constexpr int kExecSamples = 7;
constexpr int kWriteSamples = 5;
constexpr int kWriteMiB = 32;

class NoisyNeighbourTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!env().skip.empty()) GTEST_SKIP() << env().skip;
  }
  void TearDown() override {
    if (!env().skip.empty()) return;
    (void)nv("rm -f quiet noisy 2>/dev/null");
    EXPECT_EQ(env().leftovers(), "") << "left behind";
  }

  // The quiet sandbox's exec latency and write throughput, measured the same way each time.
  Measured measure() {
    Measured m;
    (void)nv("exec quiet true");  // warm-up: the agent's and the host's caches
    std::vector<double> exec_ms;
    for (int i = 0; i < kExecSamples; ++i) {
      const auto start = std::chrono::steady_clock::now();
      auto r = nv("exec quiet true");
      const auto end = std::chrono::steady_clock::now();
      EXPECT_EQ(r.exit_code, 0) << r.output;
      exec_ms.push_back(std::chrono::duration<double, std::milli>(end - start).count());
    }
    m.exec_ms = median(exec_ms);
    // ash's `time` of a child sh: the guest's own clock, 10 ms resolution (a write takes ~1 s
    // under TCG). The file goes to the overlay's upper dir, the container's writable layer.
    const std::regex real(R"(real\s+(\d+)m\s*([0-9.]+)s)");
    std::vector<double> mbps;
    for (int i = 0; i < kWriteSamples; ++i) {
      auto r = nv("exec quiet sh -c 'time sh -c \"dd if=/dev/zero of=/quiet.dat bs=1M count=" +
                  std::to_string(kWriteMiB) + " 2>/dev/null\"; rm -f /quiet.dat' 2>&1");
      std::smatch match;
      if (!std::regex_search(r.output, match, real)) {
        ADD_FAILURE() << "no timing in: " << r.output;
        continue;
      }
      const double seconds = std::stod(match[1]) * 60 + std::stod(match[2]);
      mbps.push_back(kWriteMiB * 1.048576 / std::max(seconds, 0.01));
    }
    m.write_mbps = median(mbps);
    return m;
  }

  // Measures the quiet sandbox idle, starts the noisy one running `command`, lets it ramp up,
  // measures the quiet one again, removes the noisy one, and checks the 2x bound.
  void withNeighbour(const std::string& what, const std::string& command) {
    const Measured idle = measure();
    ASSERT_GT(idle.exec_ms, 0);
    ASSERT_GT(idle.write_mbps, 0);
    auto started = nv("run -d --name noisy busybox sh -c '" + command + "'");
    ASSERT_EQ(started.exit_code, 0) << started.output;
    auto inspected = nlohmann::json::parse(nv("inspect noisy 2>/dev/null").output, nullptr, false);
    const int vmm = inspected.is_object() ? inspected.value("vmm_pid", 0) : 0;
    std::this_thread::sleep_for(milliseconds(3000));
    const double cpu_before = cpuSeconds(vmm);
    const auto t0 = std::chrono::steady_clock::now();
    const Measured noisy = measure();
    const double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double noisy_cpu = (cpuSeconds(vmm) - cpu_before) / wall;
    auto after = nlohmann::json::parse(nv("inspect noisy 2>/dev/null").output, nullptr, false);
    const bool still_running = after.is_object() && after.value("status", "") == "running";
    auto removed = nv("rm -f noisy");
    EXPECT_EQ(removed.exit_code, 0) << removed.output;

    std::printf("noisy-neighbour %-12s exec %6.0f ms (idle %6.0f, x%.2f)  write %6.1f MB/s "
                "(idle %6.1f, x%.2f)  neighbour VMM %.2f cores%s\n",
                what.c_str(), noisy.exec_ms, idle.exec_ms, noisy.exec_ms / idle.exec_ms,
                noisy.write_mbps, idle.write_mbps, idle.write_mbps / noisy.write_mbps, noisy_cpu,
                still_running ? "" : " (neighbour had stopped)");
    std::fflush(stdout);
    RecordProperty(what + "_idle_exec_ms", std::to_string(idle.exec_ms));
    RecordProperty(what + "_idle_write_mbps", std::to_string(idle.write_mbps));
    RecordProperty(what + "_exec_ms", std::to_string(noisy.exec_ms));
    RecordProperty(what + "_write_mbps", std::to_string(noisy.write_mbps));
    // A neighbour that ended early proves nothing.
    EXPECT_TRUE(still_running) << what << ": the noisy sandbox stopped during the measurement";
    EXPECT_LE(noisy.exec_ms, 2 * idle.exec_ms) << what << ": exec latency more than 2x idle";
    EXPECT_GE(noisy.write_mbps, idle.write_mbps / 2) << what << ": write throughput under idle/2";
  }
};

TEST_F(NoisyNeighbourTest, QuietSandboxStaysWithin2xOfIdle) {
  auto quiet = nv("run -d --name quiet busybox sleep 3600");
  ASSERT_EQ(quiet.exit_code, 0) << quiet.output;
  std::printf("noisy-neighbour: %d exec, %d x %d MiB writes per measurement (medians); host has "
              "%ld cores\n",
              kExecSamples, kWriteSamples, kWriteMiB, ::sysconf(_SC_NPROCESSORS_ONLN));

  // A shell keeps forking bombs (the container's pids limit and the guest's task table are
  // what stop each one). busybox sh exits when a fork fails, so the container's init is a
  // `sleep` that never forks: the bomb may lose its first shell, never the sandbox.
  withNeighbour("fork-bomb", "(f(){ f | f & }; while :; do f; done) & exec sleep 3600");
  // `tail` keeps all of an endless input: it grows until the guest's OOM killer ends it.
  withNeighbour("memory-fill", "while true; do tail /dev/zero; done");
  withNeighbour("disk-write",
                "while true; do dd if=/dev/zero of=/noise.dat bs=1M count=96 2>/dev/null; "
                "rm -f /noise.dat; done");
  // Detached: the flood goes through the agent's stdout stream to the host's output.log.
  withNeighbour("stdout-flood", "yes 0123456789abcdef0123456789abcdef");

  auto removed = nv("rm -f quiet");
  EXPECT_EQ(removed.exit_code, 0) << removed.output;
}

}  // namespace
}  // namespace nv
