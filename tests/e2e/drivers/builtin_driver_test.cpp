// SPDX-License-Identifier: Apache-2.0
// The builtin driver (nanovisor-vmm) for real:
// - boots the project's guest kernel with the test init as far as this host allows: where KVM
//   runs unmodified guests the init marker must appear; on a PVM host the kernel prints the
//   e820 map and its "Memory:" line, then stops, and the test skips with "stopped at the
//   host's PVM limit" (never a pass);
// - the agent channel: <dir>/agent.sock bridged to guest vsock port 1024, exercised with the
//   freestanding test guest echoing through vsock (it runs on PVM too);
// - the VMM jail and cgroup (as root): nanovisor-vmm and every thread seccomp-filtered, no
//   capabilities, no_new_privs, a jail uid, its own namespaces, a per-sandbox cgroup, and
//   nothing of it left once the Vm is gone, or once reapOrphanedBuiltin cleaned up after a
//   dead owner (what the shim's `delete` does);
// - `nanovisor-vmm probe` answers, and `auto` follows its (cached) answer.
#include <fcntl.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "common/subprocess.h"
#include "common/unique_fd.h"
#include "runtime/agent_client.h"
#include "runtime/builtin_driver.h"
#include "runtime/config.h"
#include "runtime/host_probe.h"
#include "runtime/jail.h"
#include "runtime/vmm_host.h"

namespace nv::runtime {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

constexpr const char* kInitMarker = "nanovisor-testinit: kernel";

std::string readAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool processGone(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string content((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  auto close = content.rfind(')');
  return content.empty() || (close != std::string::npos && content.substr(close + 2, 1) == "Z");
}

// The rest of the line of /proc/<pid>/status field `key` (e.g. "Uid:"), tabs and all.
std::string statusField(const fs::path& status, const std::string& key) {
  std::ifstream in(status);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(key, 0) == 0) return line.substr(key.size());
  }
  return "(no " + key + ")";
}

// The driver as the CLI uses it: jailed and in a cgroup, which needs root (unjailed otherwise).
BuiltinOptions driverOptions() {
  const bool root = ::geteuid() == 0;
  return BuiltinOptions{.binary = NV_VMM_BINARY, .jail = root, .cgroup = root};
}

class BuiltinDriverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    UniqueFd kvm(::open("/dev/kvm", O_RDWR | O_CLOEXEC));
    if (!kvm) GTEST_SKIP() << "/dev/kvm cannot be opened: " << std::strerror(errno);
    char tmpl[] = "/tmp/nv-builtin-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  // Polls the console for `done`, at most `seconds` (an event wait, not a timed assertion).
  bool waitConsole(const std::function<bool(const std::string&)>& done, int seconds) {
    for (int i = 0; i < seconds * 20; ++i) {
      if (done(readAll(dir_ / "console.log"))) return true;
      std::this_thread::sleep_for(milliseconds(50));
    }
    return done(readAll(dir_ / "console.log"));
  }

  // The freestanding test guest echoing on vsock port 1024, booted from dir_.
  VmSpec vsockGuestSpec(const std::string& id) {
    std::ofstream(dir_ / "initramfs.img") << "unused by the test guest";
    VmSpec spec;
    spec.id = id;
    spec.dir = dir_;
    spec.kernel = NV_TEST_GUEST_PATH;
    spec.initramfs = dir_ / "initramfs.img";
    spec.memory_mib = 128;  // the VMM keeps 64 MiB below the initramfs for the kernel
    spec.cmdline = "test=vsock port=1024";
    return spec;
  }

  fs::path dir_;
};

TEST_F(BuiltinDriverTest, LinuxKernel_BootsAsFarAsTheHostAllows) {
  const char* src = std::getenv("NV_SOURCE_DIR");
  ASSERT_NE(src, nullptr) << "run through ctest (NV_SOURCE_DIR unset)";
  auto kdir = runCommand({std::string(src) + "/guest-kernel/build.sh", "--dir"}, milliseconds(10000));
  if (!kdir || kdir->exit_code != 0) GTEST_SKIP() << "guest kernel not built; run 'make kernel'";
  const fs::path kernel = fs::path(kdir->output.substr(0, kdir->output.find('\n'))) / "vmlinux";
  if (!fs::exists(kernel)) GTEST_SKIP() << "no vmlinux in the kernel cache";

  VmSpec spec;
  spec.id = "builtin-linux";
  spec.dir = dir_;
  spec.kernel = kernel;
  spec.initramfs = NV_TESTINIT_CPIO;
  spec.memory_mib = 256;
  // The driver's cmdline says "quiet"; the test needs the kernel's info lines (e820, Memory:).
  // loglevel first: the early console replays the log at the level in force when it starts.
  spec.cmdline = "loglevel=7 earlyprintk=serial";
  BuiltinDriver driver(driverOptions());
  auto vm = driver.create(spec);
  ASSERT_TRUE(vm) << vm.error().message();
  const pid_t pid = (*vm)->vmmPid();
  EXPECT_TRUE(fs::exists(dir_ / "vm" / "vmm.sock"));
  EXPECT_TRUE(fs::exists(dir_ / "agent.sock"));

  // Every guest instruction is emulated on a PVM host: wait for what the kernel prints (or the
  // init marker, or the VMM ending) for at most 4 minutes.
  const std::regex memory_line("Memory: \\d+K/\\d+K available");
  bool seen = waitConsole(
      [&](const std::string& out) {
        return out.find(kInitMarker) != std::string::npos ||
               std::regex_search(out, memory_line) || processGone(pid);
      },
      240);
  // Where KVM runs unmodified guests init follows shortly: give it up to 60 s more.
  if (seen && readAll(dir_ / "console.log").find(kInitMarker) == std::string::npos &&
      !processGone(pid)) {
    waitConsole([&](const std::string& out) {
      return out.find(kInitMarker) != std::string::npos || processGone(pid);
    }, 60);
  }
  const std::string out = readAll(dir_ / "console.log");
  (*vm)->kill();
  EXPECT_TRUE(processGone(pid));
  EXPECT_FALSE(fs::exists(dir_ / "vm" / "vmm.sock")) << "nanovisor-vmm left its control socket";
  const std::string reason = (*vm)->exitReason();
  vm->reset();
  EXPECT_FALSE(fs::exists(dir_ / "agent.sock")) << "the agent bridge left its socket";

  // The e820 map nanovisor-vmm built: low RAM below the EBDA, RAM from 1 MiB to the top.
  EXPECT_NE(out.find("BIOS-provided physical RAM map"), std::string::npos) << out;
  EXPECT_NE(out.find("BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff] usable"),
            std::string::npos) << out;
  EXPECT_NE(out.find("BIOS-e820: [mem 0x0000000000100000-0x000000000fffffff] usable"),
            std::string::npos) << out;
  EXPECT_TRUE(std::regex_search(out, memory_line)) << out << "\n" << reason;
  if (out.find(kInitMarker) != std::string::npos) {
    SUCCEED();
    return;
  }
  GTEST_SKIP() << "stopped at the host's PVM limit: the kernel printed its e820 map and "
                  "Memory: line under nanovisor-vmm, then stopped (" << reason << ")";
}

TEST_F(BuiltinDriverTest, AgentSocket_BridgedToGuestVsockPort1024) {
  // The freestanding test guest listens on vsock port 1024 and echoes; it ends (debug-exit
  // 0x31) when the host side closes.
  const VmSpec spec = vsockGuestSpec("builtin-agent");
  BuiltinDriver driver(driverOptions());
  auto vm = driver.create(spec);
  ASSERT_TRUE(vm) << vm.error().message();
  // Pause/resume go through the control API (vmm_api_kvm_test checks their effect).
  ASSERT_TRUE((*vm)->pause());
  ASSERT_TRUE((*vm)->resume());
  auto fd = connectUnixSocket((*vm)->agentSocket());
  ASSERT_TRUE(fd) << fd.error().message();
  // A stalled echo fails (short count) after 60 s without progress instead of hanging.
  const timeval stall{.tv_sec = 60, .tv_usec = 0};
  ASSERT_EQ(::setsockopt(fd->get(), SOL_SOCKET, SO_RCVTIMEO, &stall, sizeof stall), 0);
  ASSERT_EQ(::setsockopt(fd->get(), SOL_SOCKET, SO_SNDTIMEO, &stall, sizeof stall), 0);
  std::string sent(1 << 20, '\0');
  std::mt19937 rng(7);
  for (auto& c : sent) c = static_cast<char>(rng());
  std::thread writer([&] {
    size_t done = 0;
    while (done < sent.size()) {
      ssize_t n = ::write(fd->get(), sent.data() + done, std::min<size_t>(65536, sent.size() - done));
      if (n <= 0) return;
      done += static_cast<size_t>(n);
    }
  });
  std::string got;
  std::vector<char> buf(65536);
  while (got.size() < sent.size()) {
    ssize_t n = ::read(fd->get(), buf.data(), buf.size());
    if (n <= 0) break;
    got.append(buf.data(), static_cast<size_t>(n));
  }
  writer.join();
  EXPECT_EQ(got.size(), sent.size());
  EXPECT_TRUE(got == sent) << "echo differs";
  fd->reset();  // host closes: the VMM tells the guest, which finishes
  ASSERT_TRUE((*vm)->wait(milliseconds(60000))) << readAll(dir_ / "console.log");
  EXPECT_NE((*vm)->exitReason().find("exited with status 49"), std::string::npos)
      << (*vm)->exitReason();
  EXPECT_NE(readAll(dir_ / "console.log").find("vsock accepted host port"), std::string::npos);
}

TEST_F(BuiltinDriverTest, Jail_VmmIsSeccompedUnprivilegedInItsOwnNamespacesAndCgroup) {
  if (::geteuid() != 0) GTEST_SKIP() << "the VMM jail needs root";
  const VmSpec spec = vsockGuestSpec("builtin-jail");
  BuiltinDriver driver(BuiltinOptions{.binary = NV_VMM_BINARY});  // jail and cgroup: defaults
  auto vm = driver.create(spec);
  ASSERT_TRUE(vm) << vm.error().message();
  const pid_t pid = (*vm)->vmmPid();
  const fs::path proc = "/proc/" + std::to_string(pid);
  // Every thread has entered its seccomp class once the API answered (nv-api) and a byte went
  // through the guest and back (nv-vcpu0, nv-devices, main).
  ASSERT_TRUE((*vm)->pause());
  ASSERT_TRUE((*vm)->resume());
  auto fd = connectUnixSocket((*vm)->agentSocket());
  ASSERT_TRUE(fd) << fd.error().message();
  ASSERT_EQ(::write(fd->get(), "ping", 4), 4);
  std::string echoed;
  char buf[16];
  while (echoed.size() < 4) {
    const ssize_t n = ::read(fd->get(), buf, sizeof buf);
    if (n <= 0) break;
    echoed.append(buf, static_cast<size_t>(n));
  }
  ASSERT_EQ(echoed, "ping") << "the agent bridge does not work jailed";

  // The VMM and every one of its threads.
  std::set<std::string> names;
  for (const auto& task : fs::directory_iterator(proc / "task")) {
    const fs::path status = task.path() / "status";
    const std::string name = statusField(status, "Name:\t");
    names.insert(name);
    EXPECT_EQ(statusField(status, "Seccomp:\t"), "2") << name;
    EXPECT_EQ(statusField(status, "NoNewPrivs:\t"), "1") << name;
    for (const char* caps : {"CapEff:\t", "CapPrm:\t", "CapBnd:\t", "CapInh:\t", "CapAmb:\t"}) {
      EXPECT_EQ(statusField(status, caps), "0000000000000000") << name << " " << caps;
    }
    for (const char* ids : {"Uid:\t", "Gid:\t"}) {
      std::istringstream in(statusField(status, ids));
      uint64_t id = 0;
      int count = 0;
      while (in >> id) {
        ++count;
        EXPECT_GE(id, kJailIdBase) << name << " " << ids << " (real, effective, saved, fs)";
        EXPECT_LT(id, uint64_t{kJailIdBase} + kJailIdCount) << name << " " << ids;
      }
      EXPECT_EQ(count, 4) << name << " " << ids;
    }
    EXPECT_EQ(statusField(status, "Groups:\t").find_first_not_of(' '), std::string::npos)
        << name << ": supplementary groups";
  }
  for (const char* name : {"nanovisor-vmm", "nv-api", "nv-devices", "nv-vcpu0"}) {
    EXPECT_EQ(names.count(name), 1U) << name;
  }
  // pid 1 of its own pid namespace (NSpid: host pid, then 1).
  EXPECT_NE(statusField(proc / "status", "NSpid:\t").find("\t1"), std::string::npos);
  for (const char* ns : {"mnt", "pid", "ipc", "uts", "net", "cgroup"}) {
    EXPECT_NE(fs::read_symlink(proc / "ns" / ns), fs::read_symlink(fs::path("/proc/self/ns") / ns))
        << ns << " namespace shared with the host";
  }
  // What it sees: its VM dir, kernel, initramfs, itself, /usr; nothing of /home, /tmp or /sys.
  std::set<std::string> mount_points;
  {
    std::ifstream mountinfo(proc / "mountinfo");
    for (std::string line; std::getline(mountinfo, line);) {
      std::istringstream fields(line);
      std::string id, parent, devices, root, point;
      fields >> id >> parent >> devices >> root >> point;
      mount_points.insert(point);
    }
  }
  for (const char* seen : {"/", "/vm", "/boot/vmlinux", "/boot/initramfs", "/usr",
                           "/vmm/nanovisor-vmm"}) {
    EXPECT_EQ(mount_points.count(seen), 1U) << seen;
  }
  for (const char* unseen : {"/home", "/tmp", "/sys", "/run", "/root"}) {
    EXPECT_EQ(mount_points.count(unseen), 0U) << unseen;
  }
  EXPECT_FALSE(fs::exists(proc / "root" / "home"));
  EXPECT_TRUE(fs::exists(proc / "root" / "dev" / "kvm"));
  // Its VM dir is the only host directory it can write, owned by its uid.
  struct stat vm_dir {};
  ASSERT_EQ(::stat((dir_ / "vm").c_str(), &vm_dir), 0);
  uid_t vmm_uid = 0;
  std::istringstream(statusField(proc / "status", "Uid:\t")) >> vmm_uid;
  EXPECT_EQ(vm_dir.st_uid, vmm_uid);
  EXPECT_EQ(vm_dir.st_mode & 0777, 0700U);
  EXPECT_TRUE(fs::exists(dir_ / "vm" / "vmm.sock"));
  EXPECT_TRUE(fs::is_directory(dir_ / "jail"));
  EXPECT_TRUE(fs::is_empty(dir_ / "jail")) << "the jail's mounts are visible on the host";

  // A per-sandbox cgroup (each hierarchy on v1), recorded for orphan cleanup.
  const std::string cgroups = readAll(proc / "cgroup");
  EXPECT_NE(cgroups.find("/nanovisor-builtin-jail-"), std::string::npos) << cgroups;
  std::vector<fs::path> cgroup_dirs;
  {
    std::ifstream record(dir_ / kVmmCgroupsFile);
    for (std::string line; std::getline(record, line);) cgroup_dirs.emplace_back(line);
  }
  ASSERT_FALSE(cgroup_dirs.empty()) << "no " << kVmmCgroupsFile << " in the sandbox dir";
  for (const auto& dir : cgroup_dirs) {
    EXPECT_NE(dir.filename().string().rfind("nanovisor-builtin-jail-", 0), std::string::npos)
        << dir;
    std::istringstream procs(readAll(dir / "cgroup.procs"));
    std::set<pid_t> members;
    for (pid_t member = 0; procs >> member;) members.insert(member);
    EXPECT_EQ(members, std::set<pid_t>{pid}) << dir;
  }

  // Gone with the Vm: the process, the VM dir, the jail's mount point, the cgroup, the record.
  fd->reset();
  (*vm)->kill();
  vm->reset();
  EXPECT_TRUE(processGone(pid));
  EXPECT_FALSE(fs::exists(dir_ / "vm"));
  EXPECT_FALSE(fs::exists(dir_ / "jail"));
  EXPECT_FALSE(fs::exists(dir_ / "agent.sock"));
  for (const auto& dir : cgroup_dirs) EXPECT_FALSE(fs::exists(dir)) << dir;
  EXPECT_FALSE(fs::exists(dir_ / kVmmCgroupsFile));
  // The console log stays for debugging, written by the jailed VMM through its stdout.
  EXPECT_NE(readAll(dir_ / "console.log").find("vsock accepted host port"), std::string::npos)
      << readAll(dir_ / "console.log");
}

TEST_F(BuiltinDriverTest, OwnerGone_ReapOrphanedBuiltinEndsTheVmmAndRemovesItsCgroupAndJail) {
  if (::geteuid() != 0) GTEST_SKIP() << "the VMM jail needs root";
  const VmSpec spec = vsockGuestSpec("builtin-orphan");
  BuiltinDriver driver(BuiltinOptions{.binary = NV_VMM_BINARY});
  auto vm = driver.create(spec);
  ASSERT_TRUE(vm) << vm.error().message();
  const pid_t pid = (*vm)->vmmPid();
  std::vector<fs::path> cgroup_dirs;
  {
    std::ifstream record(dir_ / kVmmCgroupsFile);
    for (std::string line; std::getline(record, line);) cgroup_dirs.emplace_back(line);
  }
  ASSERT_FALSE(cgroup_dirs.empty());
  // A pid that is not this sandbox's VMM (reused) is left alone.
  auto bystander = Subprocess::spawn({.argv = {"sleep", "60"}});
  ASSERT_TRUE(bystander) << bystander.error().message();
  reapOrphanedBuiltin(dir_ / "elsewhere", spec.id, bystander->pid());
  EXPECT_FALSE(bystander->wait(milliseconds(0))) << "a process that is no VMM was killed";

  // What the shim's `delete` does when the VMM's owner died: only the state dir and the pid.
  reapOrphanedBuiltin(dir_, spec.id, pid);
  ASSERT_TRUE((*vm)->wait(milliseconds(10000)));
  EXPECT_NE((*vm)->exitReason().find("killed by signal 9"), std::string::npos)
      << (*vm)->exitReason();
  for (const auto& dir : cgroup_dirs) EXPECT_FALSE(fs::exists(dir)) << dir;
  EXPECT_FALSE(fs::exists(dir_ / kVmmCgroupsFile));
  EXPECT_FALSE(fs::exists(dir_ / "vm"));
  EXPECT_FALSE(fs::exists(dir_ / "jail"));
  vm->reset();  // the owner's own cleanup finds nothing left to do
  EXPECT_TRUE(processGone(pid));
}

TEST_F(BuiltinDriverTest, SeccompViolationInTheVmm_ReportedInOneLine) {
  // nanovisor-vmm's test hook (the driver passes exactly this variable on, into the jail
  // too): its vCPU thread makes a syscall its seccomp filter forbids right after installing
  // it, which kills the VMM with SIGSYS.
  const VmSpec spec = vsockGuestSpec("builtin-sigsys");
  BuiltinDriver driver(driverOptions());
  ::setenv("NANOVISOR_VMM_TEST_FORBIDDEN_SYSCALL", "vcpu", 1);
  auto vm = driver.create(spec);
  ::unsetenv("NANOVISOR_VMM_TEST_FORBIDDEN_SYSCALL");
  // The VMM dies as its vCPU starts: while create() waits for its control socket (create's
  // error says why) or right after (exitReason() does).
  const std::string report =
      !vm ? vm.error().message()
          : ((*vm)->wait(milliseconds(60000)) ? (*vm)->exitReason() : "still running");
  EXPECT_NE(report.find("nanovisor-vmm killed by signal 31 (SIGSYS): seccomp violation"),
            std::string::npos)
      << report;
  EXPECT_EQ(report.find('\n'), std::string::npos) << report;
}

TEST_F(BuiltinDriverTest, Probe_AnswersAndAutoFollowsIt) {
  auto probe = runCommand({NV_VMM_BINARY, "probe"}, milliseconds(30000));
  ASSERT_TRUE(probe) << probe.error().message();
  ASSERT_TRUE(probe->exit_code == 0 || probe->exit_code == 1) << probe->output;
  const bool yes = probe->exit_code == 0;
  EXPECT_EQ(probe->output.rfind(yes ? "yes: " : "no: ", 0), 0U) << probe->output;
  if (!yes) {
    // The answer on PVM hosts (the CI machines): the guest's exception ended the VM.
    EXPECT_NE(probe->output.find("KVM_EXIT_INTERNAL_ERROR"), std::string::npos) << probe->output;
  }

  RuntimeConfig config;
  config.state_dir = dir_;
  config.vmm_binary = NV_VMM_BINARY;
  HostCapabilities caps = probeHost(config);
  EXPECT_TRUE(caps.kvm_usable);
  EXPECT_EQ(caps.kvm_unmodified_guests, yes) << caps.kvm_detail;
  EXPECT_EQ(caps.kvm_detail, probe->output.substr(0, probe->output.find('\n')));
  EXPECT_TRUE(fs::exists(dir_ / "host-probe.json"));
  // Cached: a second probe reads the file (even with the binary gone).
  config.vmm_binary = dir_ / "missing-vmm";
  EXPECT_EQ(probeHost(config).kvm_unmodified_guests, yes);
  config.vmm_binary = NV_VMM_BINARY;
  config.hypervisor = "auto";
  EXPECT_EQ(resolveDriver(config, caps), yes ? "builtin" : "qemu");
  config.hypervisor = "builtin";
  EXPECT_EQ(resolveDriver(config, caps), "builtin");
  RecordProperty("probe", probe->output.substr(0, probe->output.find('\n')));
  RecordProperty("auto", yes ? "builtin" : "qemu");
}

}  // namespace
}  // namespace nv::runtime
