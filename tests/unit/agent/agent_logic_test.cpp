// SPDX-License-Identifier: Apache-2.0
// Pure agent logic without root: OCI spec parsing, boot options, passwd/group resolution,
// seccomp translation, the stream ring buffer, cgroup value conversions, path helpers.
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "agent/agent_service.h"
#include "agent/boot.h"
#include "agent/boot_options.h"
#include "agent/cgroup.h"
#include "agent/child.h"
#include "agent/launch_config.h"
#include "agent/oci_spec.h"
#include "agent/passwd.h"
#include "agent/rootfs.h"
#include "agent/rpc_server.h"
#include "agent/seccomp_filter.h"
#include "agent/stream_buffer.h"

namespace nv::agent {
namespace {

namespace fs = std::filesystem;

constexpr const char* kMinimalSpec = R"({"process":{"args":["true"]}})";

TEST(OciSpec, Minimal_DefaultsCwdToRoot) {
  auto spec = parseSpec(kMinimalSpec);
  ASSERT_TRUE(spec) << spec.error().message();
  EXPECT_EQ(spec->process.args, std::vector<std::string>{"true"});
  EXPECT_EQ(spec->process.cwd, "/");
  EXPECT_FALSE(spec->process.capabilities.has_value());
}

TEST(OciSpec, FullSpec_ParsesEveryField) {
  auto spec = parseSpec(R"({
    "process": {"args": ["sh", "-c", "x"], "env": ["A=1"], "cwd": "/w", "terminal": true,
      "user": {"uid": 1000, "gid": 100, "additionalGids": [5, 6]},
      "capabilities": {"bounding": ["CAP_KILL", "CAP_CHOWN"], "effective": ["CAP_KILL"]},
      "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 2048}],
      "noNewPrivileges": true, "consoleSize": {"height": 24, "width": 80}},
    "root": {"path": "rootfs", "readonly": true},
    "hostname": "h",
    "mounts": [{"destination": "/proc", "type": "proc", "source": "proc",
                "options": ["nosuid", "ro"]}],
    "linux": {"namespaces": [{"type": "pid"}, {"type": "network"}],
      "resources": {"memory": {"limit": 67108864}, "cpu": {"quota": 50000, "period": 100000},
                    "pids": {"limit": 64}},
      "maskedPaths": ["/proc/kcore"], "readonlyPaths": ["/proc/sys"],
      "sysctl": {"net.ipv4.ip_forward": "1"},
      "seccomp": {"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                      "args": [{"index": 1, "value": 7, "op": "SCMP_CMP_EQ"}]}]}}
  })");
  ASSERT_TRUE(spec) << spec.error().message();
  EXPECT_EQ(spec->process.user.uid, 1000u);
  EXPECT_EQ(spec->process.user.additional_gids, (std::vector<uint32_t>{5, 6}));
  ASSERT_TRUE(spec->process.capabilities.has_value());
  EXPECT_EQ(spec->process.capabilities->bounding.size(), 2u);
  ASSERT_EQ(spec->process.rlimits.size(), 1u);
  EXPECT_EQ(spec->process.rlimits[0].resource, RLIMIT_NOFILE);
  EXPECT_EQ(spec->process.console_rows, 24);
  EXPECT_TRUE(spec->root_readonly);
  EXPECT_EQ(spec->namespace_flags, CLONE_NEWPID | CLONE_NEWNET);
  EXPECT_EQ(spec->resources.memory_limit, 67108864);
  EXPECT_EQ(spec->resources.pids_limit, 64);
  ASSERT_TRUE(spec->seccomp.has_value());
  EXPECT_EQ(spec->seccomp->syscalls[0].args[0].value, 7u);
  EXPECT_EQ(spec->sysctl.at("net.ipv4.ip_forward"), "1");
}

TEST(OciSpec, BadJson_SaysSo) {
  auto spec = parseSpec("{\"process\":");
  ASSERT_FALSE(spec);
  EXPECT_TRUE(spec.error().is(Errc::kInvalidArgument));
  EXPECT_NE(spec.error().message().find("not valid JSON"), std::string::npos);
}

TEST(OciSpec, EmptyArgs_NamesTheField) {
  auto spec = parseSpec(R"({"process":{"args":[]}})");
  ASSERT_FALSE(spec);
  EXPECT_NE(spec.error().message().find("process.args"), std::string::npos);
}

TEST(OciSpec, WrongType_NamesTheField) {
  auto spec = parseSpec(R"({"process":{"args":["x"],"user":{"uid":"root"}}})");
  ASSERT_FALSE(spec);
  EXPECT_NE(spec.error().message().find("process.user.uid"), std::string::npos);
}

TEST(OciSpec, UserNamespace_IsRefused) {
  auto spec = parseSpec(R"({"process":{"args":["x"]},"linux":{"namespaces":[{"type":"user"}]}})");
  ASSERT_FALSE(spec);
  EXPECT_NE(spec.error().message().find("user namespaces"), std::string::npos);
}

TEST(OciSpec, NamespacePaths_AreJoinedNotCreated_MountPathRefused) {
  auto spec = parseSpec(R"({"process":{"args":["x"]},"linux":{"namespaces":[
      {"type":"pid","path":"/proc/7/ns/pid"},{"type":"network","path":"/var/run/netns/cni-1"},
      {"type":"uts"},{"type":"mount"}]}})");
  ASSERT_TRUE(spec) << spec.error().message();
  EXPECT_EQ(spec->join_namespace_flags, CLONE_NEWPID | CLONE_NEWNET);
  EXPECT_EQ(spec->namespace_flags, CLONE_NEWUTS | CLONE_NEWNS);
  auto mount = parseSpec(
      R"({"process":{"args":["x"]},"linux":{"namespaces":[{"type":"mount","path":"/proc/7/ns/mnt"}]}})");
  ASSERT_FALSE(mount);
  EXPECT_NE(mount.error().message().find("joining a mount namespace"), std::string::npos);
}

TEST(OciSpec, MountDestinationWithDotDot_IsRefused) {
  auto spec = parseSpec(
      R"({"process":{"args":["x"]},"mounts":[{"destination":"/a/../../etc","type":"tmpfs"}]})");
  ASSERT_FALSE(spec);
}

TEST(OciSpec, UnknownCapability_IsRefused) {
  auto spec =
      parseSpec(R"({"process":{"args":["x"],"capabilities":{"bounding":["CAP_FLY"]}}})");
  ASSERT_FALSE(spec);
  EXPECT_NE(spec.error().message().find("CAP_FLY"), std::string::npos);
}

TEST(OciSpec, RlimitSoftAboveHard_IsRefused) {
  auto spec = parseSpec(
      R"({"process":{"args":["x"],"rlimits":[{"type":"RLIMIT_NOFILE","soft":9,"hard":1}]}})");
  ASSERT_FALSE(spec);
}

TEST(OciSpec, ParseProcess_ReadsExecObject) {
  auto p = parseProcess(R"({"args":["ls","-l"],"env":["X=1"],"cwd":"/tmp","terminal":true})");
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_EQ(p->args.size(), 2u);
  EXPECT_TRUE(p->terminal);
}

TEST(OciSpec, EnvWithoutEquals_IsRefused) {
  EXPECT_FALSE(parseProcess(R"({"args":["x"],"env":["NOEQUALS"]})"));
}

TEST(MountOptions, FlagsPropagationAndData_AreSeparated) {
  auto mf = parseMountOptions({"nosuid", "ro", "rbind", "rprivate", "mode=755", "size=1k"});
  EXPECT_EQ(mf.flags, static_cast<unsigned long>(MS_NOSUID | MS_RDONLY));
  EXPECT_TRUE(mf.bind);
  EXPECT_TRUE(mf.recursive);
  EXPECT_EQ(mf.propagation, static_cast<unsigned long>(MS_PRIVATE | MS_REC));
  EXPECT_EQ(mf.data, "mode=755,size=1k");
}

TEST(MountOptions, RwAfterRo_ClearsReadOnly) {
  EXPECT_EQ(parseMountOptions({"ro", "rw"}).flags, 0u);
}

TEST(Paths, CleanAbsolutePath_RejectsDotsAndRelative) {
  EXPECT_TRUE(isCleanAbsolutePath("/proc/sys"));
  EXPECT_TRUE(isCleanAbsolutePath("/"));
  EXPECT_FALSE(isCleanAbsolutePath("proc"));
  EXPECT_FALSE(isCleanAbsolutePath("/a/../b"));
  EXPECT_FALSE(isCleanAbsolutePath("/a/./b"));
}

class SecureJoinTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/nv-join.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    fs::create_directories(root_ + "/real/dir");
  }
  void TearDown() override { fs::remove_all(root_); }
  std::string root_;
};

TEST_F(SecureJoinTest, AbsoluteSymlink_StaysInsideRoot) {
  fs::create_symlink("/etc", root_ + "/escape");
  auto joined = secureJoin(root_, "/escape/passwd");
  ASSERT_TRUE(joined);
  EXPECT_EQ(*joined, root_ + "/etc/passwd");
}

TEST_F(SecureJoinTest, DotDotSymlink_IsClampedAtRoot) {
  fs::create_symlink("../../../../", root_ + "/real/up");
  auto joined = secureJoin(root_, "/real/up/x");
  ASSERT_TRUE(joined);
  EXPECT_EQ(*joined, root_ + "/x");
}

TEST_F(SecureJoinTest, RelativeSymlink_IsFollowed) {
  fs::create_symlink("real/dir", root_ + "/link");
  EXPECT_EQ(*secureJoin(root_, "/link/f"), root_ + "/real/dir/f");
}

TEST_F(SecureJoinTest, SymlinkLoop_IsAnError) {
  fs::create_symlink("loop", root_ + "/loop");
  EXPECT_FALSE(secureJoin(root_, "/loop"));
}

TEST(LookupExecutable, FindsInPathAndReportsMissing) {
  auto sh = lookupExecutable("sh", "/nonexistent:/bin:/usr/bin");
  ASSERT_TRUE(sh);
  EXPECT_TRUE(*sh == "/bin/sh" || *sh == "/usr/bin/sh");
  auto missing = lookupExecutable("no-such-binary-xyz", "/bin");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message().find("no-such-binary-xyz"), std::string::npos);
  EXPECT_EQ(*lookupExecutable("/x/y", "/bin"), "/x/y");
}

TEST(BootOptions, ParsesNanovisorKeys) {
  auto o = parseBootOptions(
      "console=ttyS0 nanovisor.channel=vsock nanovisor.log=debug nanovisor.debug_console "
      "nanovisor.vsock_port=2000 nanovisor.test_crash=exec panic=-1\n");
  EXPECT_EQ(o.channel, Channel::kVsock);
  EXPECT_TRUE(o.test_crash_on_exec);
  EXPECT_EQ(o.log_level, "debug");
  EXPECT_TRUE(o.debug_console);
  EXPECT_EQ(o.vsock_port, 2000u);
}

TEST(BootOptions, Defaults_AndBadValuesKeepDefaults) {
  auto o = parseBootOptions("nanovisor.channel=carrier-pigeon nanovisor.vsock_port=abc");
  EXPECT_EQ(o.channel, Channel::kSerial);
  EXPECT_EQ(o.vsock_port, 1024u);
  EXPECT_FALSE(o.debug_console);
  EXPECT_FALSE(o.test_crash_on_exec);
}

constexpr const char* kPasswd =
    "root:x:0:0:root:/root:/bin/sh\n"
    "# comment\n"
    "broken line\n"
    "alice:x:1000:1000:Alice:/home/alice:/bin/sh\n";
constexpr const char* kGroup = "root:x:0:\nalice:x:1000:\nstaff:x:50:bob,alice\nwheel:x:10:bob\n";

TEST(Passwd, Name_ResolvesIdsHomeAndGroups) {
  auto u = resolveUser("alice", kPasswd, kGroup);
  ASSERT_TRUE(u) << u.error().message();
  EXPECT_EQ(u->uid, 1000u);
  EXPECT_EQ(u->gid, 1000u);
  EXPECT_EQ(u->home, "/home/alice");
  EXPECT_EQ(u->additional_gids, std::vector<uint32_t>{50});
}

TEST(Passwd, NameAndGroupName_OverridesGid) {
  auto u = resolveUser("alice:staff", kPasswd, kGroup);
  ASSERT_TRUE(u);
  EXPECT_EQ(u->gid, 50u);
}

TEST(Passwd, NumericUnknownUid_IsAccepted) {
  auto u = resolveUser("4242:4343", kPasswd, kGroup);
  ASSERT_TRUE(u);
  EXPECT_EQ(u->uid, 4242u);
  EXPECT_EQ(u->gid, 4343u);
}

TEST(Passwd, UnknownName_NamesIt) {
  auto u = resolveUser("mallory", kPasswd, kGroup);
  ASSERT_FALSE(u);
  EXPECT_TRUE(u.error().is(Errc::kNotFound));
  EXPECT_NE(u.error().message().find("mallory"), std::string::npos);
}

TEST(Passwd, UnknownGroup_IsAnError) {
  EXPECT_FALSE(resolveUser("alice:nogroup", kPasswd, kGroup));
}

TEST(Seccomp, Profile_CompilesToBpf) {
  SeccompSpec profile;
  profile.default_action = "SCMP_ACT_ALLOW";
  profile.syscalls.push_back({{"mkdir", "not_a_syscall"}, "SCMP_ACT_ERRNO", 1, {}});
  auto bpf = compileSeccomp(profile);
  ASSERT_TRUE(bpf) << bpf.error().message();
  EXPECT_GT(bpf->size(), 0u);
  EXPECT_EQ(bpf->size() % 8, 0u);  // struct sock_filter is 8 bytes
}

TEST(Seccomp, UnknownAction_IsAnError) {
  SeccompSpec profile;
  profile.default_action = "SCMP_ACT_PARTY";
  auto bpf = compileSeccomp(profile);
  ASSERT_FALSE(bpf);
  EXPECT_NE(bpf.error().message().find("SCMP_ACT_PARTY"), std::string::npos);
}

TEST(Seccomp, LoadedFilter_MakesMkdirFailWithTheGivenErrno) {
  // In a child process: the filter cannot be removed once loaded.
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    SeccompSpec profile;
    profile.default_action = "SCMP_ACT_ALLOW";
    profile.syscalls.push_back({{"mkdir", "mkdirat"}, "SCMP_ACT_ERRNO", EROFS, {}});
    ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    if (!loadSeccomp(profile)) {
      _exit(2);
    }
    int rc = ::mkdir("/tmp/nv-seccomp-should-not-exist", 0700);
    _exit(rc < 0 && errno == EROFS ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(StreamBuffer, ReadsWhatWasWritten_ThenEof) {
  StreamBuffer buffer(8);
  const uint8_t data[] = {1, 2, 3, 4, 5};
  ASSERT_TRUE(buffer.write(data));
  buffer.close();
  auto first = buffer.read(3);
  EXPECT_EQ(first.data, (std::vector<uint8_t>{1, 2, 3}));
  auto second = buffer.read(100);
  EXPECT_EQ(second.data, (std::vector<uint8_t>{4, 5}));
  EXPECT_TRUE(buffer.read(100).eof);
}

TEST(StreamBuffer, RingExistsOnlyFromTheFirstWriteUntilTheDrainedEnd) {
  // Finished execs stay in the agent until their container goes: their buffers must not.
  StreamBuffer silent(1 << 20);
  EXPECT_EQ(silent.allocated(), 0u);
  silent.close();
  EXPECT_TRUE(silent.read(10).eof);
  EXPECT_EQ(silent.allocated(), 0u);

  StreamBuffer talking(1 << 20);
  const uint8_t data[] = {7, 8, 9};
  ASSERT_TRUE(talking.write(data));
  EXPECT_EQ(talking.allocated(), 1u << 20);
  EXPECT_EQ(talking.read(2).data, (std::vector<uint8_t>{7, 8}));
  ASSERT_TRUE(talking.write(data));  // drained and refilled: the ring stays while open
  EXPECT_EQ(talking.read(10).data, (std::vector<uint8_t>{9, 7, 8, 9}));
  EXPECT_EQ(talking.allocated(), 1u << 20);
  ASSERT_TRUE(talking.write(data));
  talking.close();
  EXPECT_EQ(talking.allocated(), 1u << 20);  // unread bytes keep it
  EXPECT_EQ(talking.read(10).data, (std::vector<uint8_t>{7, 8, 9}));
  EXPECT_EQ(talking.allocated(), 0u);
  EXPECT_TRUE(talking.read(10).eof);

  StreamBuffer cancelled(1 << 20);
  ASSERT_TRUE(cancelled.write(data));
  cancelled.cancel();
  EXPECT_EQ(cancelled.allocated(), 0u);
}

TEST(StreamBuffer, FinishedOnlyOnceTheClosedStreamIsReadToTheEnd) {
  StreamBuffer open_buffer(16);
  EXPECT_FALSE(open_buffer.finished());
  StreamBuffer b(16);
  const uint8_t bytes[] = {1, 2, 3};
  ASSERT_TRUE(b.write(bytes));
  b.close();
  EXPECT_FALSE(b.finished()) << "unread bytes";
  EXPECT_EQ(b.read(16).data.size(), 3u);
  EXPECT_TRUE(b.finished());
  StreamBuffer cancelled(16);
  ASSERT_TRUE(cancelled.write(bytes));
  cancelled.cancel();
  EXPECT_TRUE(cancelled.finished());
}

TEST(StreamBuffer, FullBuffer_BlocksWriterUntilRead) {
  StreamBuffer buffer(4);
  std::vector<uint8_t> data(10);
  for (size_t i = 0; i < data.size(); ++i) {
    data[i] = static_cast<uint8_t>(i);
  }
  std::thread writer([&] {
    EXPECT_TRUE(buffer.write(data));
    buffer.close();
  });
  std::vector<uint8_t> got;
  while (true) {
    auto r = buffer.read(3);
    if (r.eof) {
      break;
    }
    EXPECT_LE(buffer.size(), buffer.capacity());
    got.insert(got.end(), r.data.begin(), r.data.end());
  }
  writer.join();
  EXPECT_EQ(got, data);  // wrapped around the ring several times, in order
}

TEST(StreamBuffer, Cancel_WakesABlockedWriter) {
  StreamBuffer buffer(2);
  std::vector<uint8_t> data(10, 7);
  bool wrote = true;
  std::thread writer([&] { wrote = buffer.write(data); });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  buffer.cancel();
  writer.join();
  EXPECT_FALSE(wrote);
  EXPECT_TRUE(buffer.read(1).eof);
}

TEST(StreamBuffer, ReadTimeout_ReturnsEmptyNotEof) {
  StreamBuffer buffer(4);
  auto r = buffer.read(4, std::chrono::milliseconds(10));
  EXPECT_TRUE(r.data.empty());
  EXPECT_FALSE(r.eof);
}

TEST(Cgroup, CpuMax_FromQuotaAndPeriod) {
  EXPECT_EQ(cpuMaxValue(50000, 100000), "50000 100000");
  EXPECT_EQ(cpuMaxValue(std::nullopt, std::nullopt), "max 100000");
  EXPECT_EQ(cpuMaxValue(-1, 20000), "max 20000");
}

TEST(Cgroup, CpuWeight_FromShares) {
  EXPECT_EQ(cpuWeightFromShares(2), 1u);
  EXPECT_EQ(cpuWeightFromShares(262144), 10000u);
  EXPECT_EQ(cpuWeightFromShares(1024), 39u);
}

TEST(Cgroup, FlatKeyed_FindsKey) {
  EXPECT_EQ(flatKeyedValue("low 0\nhigh 0\nmax 3\noom 2\noom_kill 1\n", "oom_kill"), 1u);
  EXPECT_EQ(flatKeyedValue("low 0\n", "oom_kill"), 0u);
}

TEST(Cgroup, NotACgroup2Root_IsUnavailable_AndLimitsAreRefused) {
  Cgroups cgroups("/tmp");
  EXPECT_FALSE(cgroups.available());
  ResourcesSpec limits;
  limits.memory_limit = 1 << 20;
  auto created = cgroups.create("x", limits);
  ASSERT_FALSE(created);
  EXPECT_TRUE(created.error().is(Errc::kUnsupported));
  auto unlimited = cgroups.create("x", ResourcesSpec{});
  ASSERT_TRUE(unlimited);
  EXPECT_TRUE(unlimited->empty());
}

TEST(LaunchConfig, RoundTrips) {
  LaunchConfig config;
  config.kind = LaunchConfig::Kind::kExec;
  config.spec_json = kMinimalSpec;
  config.rootfs = "/r";
  config.volumes.push_back({"/s", "/d", true});
  config.init_pid = 42;
  config.tty = true;
  auto parsed = parseLaunchConfig(serializeLaunchConfig(config));
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->kind, LaunchConfig::Kind::kExec);
  EXPECT_EQ(parsed->init_pid, 42);
  EXPECT_EQ(parsed->volumes[0].destination, "/d");
  EXPECT_TRUE(parsed->tty);
}

TEST(Rootfs, DiskIndex_MapsToVirtioName) {
  ::nanovisor::agent::v1::BlockDevice device;
  device.set_index(1);
  EXPECT_EQ(*resolveBlockDevice(device, false), "/dev/vdb");
  device.set_index(26);
  EXPECT_FALSE(resolveBlockDevice(device, false));
}

TEST(Rootfs, DirectoryPath_OnlyInHostMode) {
  ::nanovisor::agent::v1::BlockDevice device;
  device.set_path("/tmp");
  EXPECT_TRUE(resolveBlockDevice(device, true));
  EXPECT_FALSE(resolveBlockDevice(device, false));
}

TEST(Rootfs, Serial_IsFoundInSysBlock) {
  char tmpl[] = "/tmp/nv-sysblock.XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  fs::create_directories(dir + "/vdc");
  FILE* f = std::fopen((dir + "/vdc/serial").c_str(), "w");
  std::fputs("nv-layer-0\n", f);
  std::fclose(f);
  ::nanovisor::agent::v1::BlockDevice device;
  device.set_serial("nv-layer-0");
  auto found = resolveBlockDevice(device, false, dir);
  device.set_serial("other");
  auto missing = resolveBlockDevice(device, false, dir);
  fs::remove_all(dir);
  ASSERT_TRUE(found);
  EXPECT_EQ(*found, "/dev/vdc");
  EXPECT_FALSE(missing);
}

TEST(Boot, SerialPort_FoundByName) {
  char tmpl[] = "/tmp/nv-vports.XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  fs::create_directories(dir + "/vport0p1");
  fs::create_directories(dir + "/vport0p2");
  FILE* f = std::fopen((dir + "/vport0p2/name").c_str(), "w");
  std::fputs("io.nanovisor.agent\n", f);
  std::fclose(f);
  auto found = findSerialPort(kAgentPortName, 0, dir);
  auto missing = findSerialPort("io.other", 0, dir);
  fs::remove_all(dir);
  ASSERT_TRUE(found);
  EXPECT_EQ(*found, "/dev/vport0p2");
  EXPECT_FALSE(missing);
}

}  // namespace
}  // namespace nv::agent
