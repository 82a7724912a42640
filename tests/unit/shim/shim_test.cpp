// SPDX-License-Identifier: Apache-2.0
// The shim's pure parts: containerd's command line, socket naming and binding, the mapping
// from a Create request's rootfs mounts and config.json to a sandbox, the event envelope.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "images/digest.h"
#include "shim/bundle.h"
#include "shim/daemon.h"
#include "shim/events.h"
#include "shim/options.h"

namespace nv::shim {
namespace {

TEST(ShimArgs, StartCommandLineFromContainerd_Parses) {
  auto args = parseArgs({"shim", "-namespace", "default", "-address", "/run/c.sock",
                         "-publish-binary", "/usr/bin/containerd", "-id", "t1", "-debug", "start"});
  ASSERT_TRUE(args.has_value()) << args.error().message();
  EXPECT_EQ(args->namespace_name, "default");
  EXPECT_EQ(args->address, "/run/c.sock");
  EXPECT_EQ(args->publish_binary, "/usr/bin/containerd");
  EXPECT_EQ(args->id, "t1");
  EXPECT_TRUE(args->debug);
  EXPECT_EQ(args->action, "start");
}

TEST(ShimArgs, DoubleDashAndEqualsForms_Parse) {
  auto args = parseArgs({"shim", "--namespace=k8s.io", "-id=abc", "--bundle", "/b", "delete"});
  ASSERT_TRUE(args.has_value()) << args.error().message();
  EXPECT_EQ(args->namespace_name, "k8s.io");
  EXPECT_EQ(args->id, "abc");
  EXPECT_EQ(args->bundle, "/b");
  EXPECT_EQ(args->action, "delete");
}

TEST(ShimArgs, NoActionMeansDaemon) {
  auto args = parseArgs({"shim", "-namespace", "n", "-id", "x", "-address", "/a"});
  ASSERT_TRUE(args.has_value());
  EXPECT_TRUE(args->action.empty());
}

TEST(ShimArgs, HelpAndVersion_NeedNoOtherFlags) {
  auto help = parseArgs({"shim", "--help"});
  ASSERT_TRUE(help.has_value());
  EXPECT_TRUE(help->help);
  auto version = parseArgs({"shim", "-v"});
  ASSERT_TRUE(version.has_value());
  EXPECT_TRUE(version->version);
}

TEST(ShimArgs, UnknownFlagOrAction_IsError) {
  EXPECT_FALSE(parseArgs({"shim", "-namespace", "n", "-id", "x", "-bogus", "1"}).has_value());
  EXPECT_FALSE(parseArgs({"shim", "-namespace", "n", "-id", "x", "stop"}).has_value());
  EXPECT_FALSE(parseArgs({"shim", "-namespace", "n", "start"}).has_value());  // no -id
  EXPECT_FALSE(parseArgs({"shim", "-namespace"}).has_value());
}

TEST(ShimSandbox, LongTaskIdsGetAShortStateDirName) {
  EXPECT_EQ(sandboxIdFor("t1"), "t1");
  const std::string cri_id(64, 'a');
  const std::string short_id = sandboxIdFor(cri_id);
  EXPECT_EQ(short_id.size(), 24u);
  EXPECT_EQ(short_id, sandboxIdFor(cri_id));  // stable: `delete` finds the same dir
  EXPECT_NE(short_id, sandboxIdFor(std::string(64, 'b')));
}

TEST(ShimSocket, PathIsSha256OfAddressNamespaceId) {
    EXPECT_EQ(socketPath("/run/containerd/containerd.sock", "default", "t1", "/s"),
            "/s/" + images::sha256Hex("/run/containerd/containerd.sock/default/t1"));
  const std::string p = socketPath("/run/containerd/containerd.sock", "default", "t1");
  EXPECT_EQ(p.rfind("/run/containerd/s/", 0), 0u);
  EXPECT_EQ(p.size(), std::string("/run/containerd/s/").size() + 64);
  EXPECT_NE(p, socketPath("/run/containerd/containerd.sock", "default", "t2"));
  EXPECT_NE(p, socketPath("/run/containerd/containerd.sock", "k8s.io", "t1"));
  EXPECT_EQ(socketAddress("/x"), "unix:///x");
}

class SocketDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/nv-shim-test-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(SocketDirTest, BindSocket_ReplacesStaleSocket_RefusesLiveOne) {
  const std::string path = dir_ + "/s/sock";
  {
    auto first = bindSocket(path);
    ASSERT_TRUE(first.has_value()) << first.error().message();
    // While it listens, a second start must see a live shim.
    auto second = bindSocket(path);
    ASSERT_FALSE(second.has_value());
    EXPECT_EQ(second.error().code(), makeErrorCode(Errc::kAlreadyExists));
  }
  // The listener closed without unlinking (a crashed shim): the file is stale and replaced.
  ASSERT_TRUE(std::filesystem::exists(path));
  auto third = bindSocket(path);
  ASSERT_TRUE(third.has_value()) << third.error().message();
}

TEST_F(SocketDirTest, WriteFileAtomic_WritesContentWithoutTempLeft) {
  ASSERT_TRUE(writeFileAtomic(dir_, "address", "unix:///x").has_value());
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/address"));
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/.address"));
  EXPECT_EQ(std::filesystem::file_size(dir_ + "/address"), 9u);
}

TEST(ShimStateDir, BesideTheCliStateDir_PerNamespace) {
  EXPECT_EQ(sandboxStateDir("/run/nanovisor", "default"), "/run/nanovisor-shim/default");
  EXPECT_EQ(sandboxStateDir("/tmp/x/state/", "k8s.io"), "/tmp/x/state-shim/k8s.io");
}

TEST(Rootfs, OverlayMount_GivesLowerdirsTopFirstAndUpperdir) {
  auto dirs = rootfsDirs({{"overlay", "overlay",
                           {"index=off", "workdir=/s/3/work", "upperdir=/s/3/fs",
                            "lowerdir=/s/2/fs:/s/1/fs"}}},
                         "/bundle", nlohmann::json::object());
  ASSERT_TRUE(dirs.has_value()) << dirs.error().message();
  EXPECT_EQ(dirs->lowerdirs, (std::vector<std::string>{"/s/2/fs", "/s/1/fs"}));
  EXPECT_EQ(dirs->upperdir, "/s/3/fs");
}

TEST(Rootfs, BindMount_IsOneLowerdir) {
  auto dirs = rootfsDirs({{"bind", "/s/1/fs", {"ro", "rbind"}}}, "/bundle", {});
  ASSERT_TRUE(dirs.has_value());
  EXPECT_EQ(dirs->lowerdirs, (std::vector<std::string>{"/s/1/fs"}));
  EXPECT_TRUE(dirs->upperdir.empty());
}

TEST(Rootfs, NoMounts_UsesSpecRootPath_RelativeToBundle) {
  auto rel = rootfsDirs({}, "/bundle", {{"root", {{"path", "rootfs"}}}});
  ASSERT_TRUE(rel.has_value());
  EXPECT_EQ(rel->lowerdirs, (std::vector<std::string>{"/bundle/rootfs"}));
  auto abs = rootfsDirs({}, "/bundle", {{"root", {{"path", "/data/r"}}}});
  ASSERT_TRUE(abs.has_value());
  EXPECT_EQ(abs->lowerdirs, (std::vector<std::string>{"/data/r"}));
}

TEST(Rootfs, UnsupportedShapes_AreErrors) {
  EXPECT_FALSE(rootfsDirs({{"ext4", "/dev/x", {}}}, "/b", {}).has_value());
  EXPECT_FALSE(rootfsDirs({{"overlay", "overlay", {"upperdir=/u"}}}, "/b", {}).has_value());
  EXPECT_FALSE(rootfsDirs({{"bind", "/a", {}}, {"bind", "/b", {}}}, "/b", {}).has_value());
  EXPECT_FALSE(rootfsDirs({}, "/b", nlohmann::json::object()).has_value());
}

nlohmann::json ctrSpec() {
  // The parts of what `ctr run IMG t1 sh -c 'exit 7'` writes into config.json that we use.
  return nlohmann::json::parse(R"({
    "ociVersion": "1.0.2-dev",
    "process": {"user": {"uid": 1000, "gid": 100}, "args": ["sh", "-c", "exit 7"],
                "env": ["PATH=/usr/bin:/bin", "A=b"], "cwd": "/tmp", "terminal": false},
    "root": {"path": "rootfs"},
    "hostname": "",
    "linux": {"resources": {"memory": {"limit": 536870912},
                            "cpu": {"quota": 150000, "period": 100000}},
              "cgroupsPath": "/default/t1",
              "namespaces": [{"type": "pid"}, {"type": "network"}]}
  })");
}

TEST(BundleProcess, CtrSpec_MapsProcessAndLimits) {
  auto process = bundleProcess(ctrSpec(), "t1", false);
  ASSERT_TRUE(process.has_value()) << process.error().message();
  EXPECT_EQ(process->command, (std::vector<std::string>{"sh", "-c", "exit 7"}));
  EXPECT_EQ(process->hostname, "t1");  // empty hostname: the task id (12 chars at most)
  EXPECT_EQ(process->memory_limit_bytes, 536870912u);
  EXPECT_DOUBLE_EQ(process->cpus, 1.5);
  const auto& spec = process->oci_spec;
  EXPECT_EQ(spec["process"]["args"], ctrSpec()["process"]["args"]);
  EXPECT_EQ(spec["process"]["cwd"], "/tmp");
  EXPECT_EQ(spec["process"]["user"]["uid"], 1000);
  EXPECT_EQ(spec["process"]["user"]["gid"], 100);
  auto env = spec["process"]["env"].get<std::vector<std::string>>();
  EXPECT_NE(std::find(env.begin(), env.end(), "A=b"), env.end());
  EXPECT_EQ(spec["hostname"], "t1");
}

TEST(BundleProcess, NoArgs_IsError) {
  auto spec = ctrSpec();
  spec["process"]["args"] = nlohmann::json::array();
  EXPECT_FALSE(bundleProcess(spec, "t1", false).has_value());
  EXPECT_FALSE(bundleProcess(nlohmann::json::object(), "t1", false).has_value());
}

TEST(BundleProcess, VmMemory_LeavesRoomAboveTheContainerLimit) {
  EXPECT_EQ(vmMemoryMib(256, 0), 256u);
  EXPECT_EQ(vmMemoryMib(256, 64ull << 20), 256u);
  EXPECT_EQ(vmMemoryMib(256, 512ull << 20), 512u + 96u);
}

nlohmann::json criSpec(const std::string& type, const std::string& sandbox_id) {
  return {{"annotations", {{"io.kubernetes.cri.container-type", type},
                           {"io.kubernetes.cri.sandbox-id", sandbox_id}}}};
}

TEST(Pod, CriAnnotations_GiveTheTasksRoleAndShimGroup) {
  auto sandbox = podRole(criSpec("sandbox", "p1"), "p1");
  EXPECT_TRUE(sandbox.sandbox);
  EXPECT_FALSE(sandbox.member());
  EXPECT_EQ(shimGroup(criSpec("sandbox", "p1"), "p1"), "p1");

  auto member = podRole(criSpec("container", "p1"), "c1");
  EXPECT_FALSE(member.sandbox);
  EXPECT_EQ(member.sandbox_id, "p1");
  EXPECT_EQ(shimGroup(criSpec("container", "p1"), "c1"), "p1");

  // A plain container (ctr), or annotations that name no other sandbox: its own VM and shim.
  for (const auto& spec : {nlohmann::json::object(), criSpec("container", ""),
                           criSpec("container", "c1"), criSpec("other", "p1"),
                           nlohmann::json{{"annotations", "garbage"}}}) {
    EXPECT_FALSE(podRole(spec, "c1").sandbox) << spec.dump();
    EXPECT_FALSE(podRole(spec, "c1").member()) << spec.dump();
    EXPECT_EQ(shimGroup(spec, "c1"), "c1") << spec.dump();
  }
}

TEST(Pod, SandboxAnnotations_SizeTheVm_GarbageIsIgnored) {
  nlohmann::json spec = {{"annotations",
                          {{"io.kubernetes.cri.sandbox-memory", "536870912"},
                           {"io.kubernetes.cri.sandbox-cpu-quota", "150000"},
                           {"io.kubernetes.cri.sandbox-cpu-period", "100000"}}}};
  auto size = podResources(spec);
  EXPECT_EQ(size.memory_limit_bytes, 536870912u);
  EXPECT_DOUBLE_EQ(size.cpus, 1.5);
  spec["annotations"]["io.kubernetes.cri.sandbox-memory"] = "12x";
  spec["annotations"]["io.kubernetes.cri.sandbox-cpu-period"] = "0";
  size = podResources(spec);
  EXPECT_EQ(size.memory_limit_bytes, 0u);
  EXPECT_EQ(size.cpus, 0);
}

TEST(DiskRateLimit, FromAnnotations_BadValueNamesTheAnnotation) {
  nlohmann::json spec = {{"annotations", {{"io.nanovisor.disk-bps", "10m:40m"},
                                          {"io.nanovisor.disk-iops", "500"}}}};
  auto limit = diskRateLimit(spec);
  ASSERT_TRUE(limit) << limit.error().message();
  EXPECT_EQ(limit->bytes, (RateLimit{10u << 20, 40u << 20}));
  EXPECT_EQ(limit->ops, (RateLimit{500, 0}));
  EXPECT_FALSE(diskRateLimit(nlohmann::json::object())->limited());
  spec["annotations"]["io.nanovisor.disk-iops"] = "lots";
  auto bad = diskRateLimit(spec);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("annotation io.nanovisor.disk-iops"), std::string::npos);
}

TEST(Pod, MemberJoinsTheNamespacesCriPointsAtTheSandbox) {
  nlohmann::json bundle = {{"linux", {{"namespaces", {{{"type", "pid"}, {"path", "/proc/9/ns/pid"}},
                                                      {{"type", "network"}, {"path", "/proc/9/ns/net"}},
                                                      {{"type", "mount"}},
                                                      {{"type", "user"}, {"path", "/proc/9/ns/user"}},
                                                      {{"type", "ipc"}, {"path", ""}}}}}}};
  nlohmann::json spec = {{"linux", {{"namespaces", {{{"type", "pid"}}, {{"type", "ipc"}},
                                                    {{"type", "mount"}}}}}}};
  joinPodNamespaces(bundle, spec);
  const nlohmann::json want = {{{"type", "pid"}, {"path", "/proc/9/ns/pid"}},
                               {{"type", "ipc"}},
                               {{"type", "mount"}},
                               {{"type", "network"}, {"path", "/proc/9/ns/net"}}};
  EXPECT_EQ(spec["linux"]["namespaces"], want) << spec.dump();
}

TEST(BindFiles, RegularFilesAreCopied_DirectoriesAndOtherMountsAreNot) {
  const auto dir = std::filesystem::temp_directory_path() / ("nv-bindfiles-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "hosts") << "10.0.0.7 pod-a\n";
  std::ofstream(dir / "hostname") << "pod-a\n";
  nlohmann::json spec = {{"mounts",
                          {{{"destination", "/etc/hosts"}, {"type", "bind"},
                            {"source", (dir / "hosts").string()}, {"options", {"rbind", "ro"}}},
                           {{"destination", "/etc/hostname"}, {"type", ""},
                            {"source", (dir / "hostname").string()}, {"options", {"rbind"}}},
                           {{"destination", "/data"}, {"type", "bind"}, {"source", dir.string()}},
                           {{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}},
                           {{"destination", "/gone"}, {"type", "bind"},
                            {"source", (dir / "missing").string()}}}}};
  auto files = bindFileCopies(spec);
  ASSERT_TRUE(files) << files.error().message();
  ASSERT_EQ(files->size(), 2u);
  EXPECT_EQ((*files)[0].destination, "/etc/hosts");
  EXPECT_EQ((*files)[0].data, "10.0.0.7 pod-a\n");
  EXPECT_TRUE((*files)[0].read_only);
  EXPECT_EQ((*files)[1].destination, "/etc/hostname");
  EXPECT_FALSE((*files)[1].read_only);

  std::ofstream(dir / "big") << std::string((64 << 10) + 1, 'x');
  spec["mounts"].push_back({{"destination", "/big"}, {"type", "bind"},
                            {"source", (dir / "big").string()}});
  auto too_big = bindFileCopies(spec);
  ASSERT_FALSE(too_big);
  EXPECT_NE(too_big.error().message().find("64 KiB"), std::string::npos);
  std::filesystem::remove_all(dir);
}

// kubelet's atomic writer: key -> ..data/key, ..data -> ..2026_11_29/, items with paths.
class SecretVolumeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::temp_directory_path() / ("nv-secretvol-" + std::to_string(::getpid()));
    volume_ = root_ / "pods/uid-1/volumes/kubernetes.io~secret/creds";
    const auto data = volume_ / "..2026_11_29_10_00_00.1";
    std::filesystem::create_directories(data / "tls");
    std::ofstream(data / "password") << "hunter2";
    std::ofstream(data / "tls/tls.key") << "KEY";
    std::filesystem::permissions(data / "password", std::filesystem::perms(0644));
    std::filesystem::permissions(data / "tls/tls.key", std::filesystem::perms(0600));
    std::filesystem::create_directory_symlink(data.filename(), volume_ / "..data");
    std::filesystem::create_symlink("..data/password", volume_ / "password");
    std::filesystem::create_directory_symlink("..data/tls", volume_ / "tls");
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  nlohmann::json spec(const std::filesystem::path& source) const {
    return {{"mounts",
             {{{"destination", "/etc/creds"}, {"type", "bind"}, {"source", source.string()},
               {"options", {"rbind", "ro"}}},
              {{"destination", "/data"}, {"type", "bind"}, {"source", root_.string()},
               {"options", {"rbind"}}}}}};
  }

  std::filesystem::path root_, volume_;
};

TEST_F(SecretVolumeTest, KubeletLayout_IsReadAsKeysWithTheirReadBits) {
  auto volumes = secretVolumes(spec(volume_));
  ASSERT_TRUE(volumes) << volumes.error().message();
  ASSERT_EQ(volumes->size(), 1u);  // /data is an ordinary directory bind: not a secret
  const auto& v = (*volumes)[0];
  EXPECT_EQ(v.destination, "/etc/creds");
  ASSERT_EQ(v.files.size(), 2u);
  EXPECT_EQ(v.files[0].name, "password");
  EXPECT_EQ(v.files[0].data, "hunter2");
  EXPECT_EQ(v.files[0].mode, 0444u);
  EXPECT_EQ(v.files[1].name, "tls/tls.key");
  EXPECT_EQ(v.files[1].data, "KEY");
  EXPECT_EQ(v.files[1].mode, 0400u);
  // Not a file copy for the guest's state dir either.
  auto files = bindFileCopies(spec(volume_));
  ASSERT_TRUE(files);
  EXPECT_TRUE(files->empty());
}

TEST_F(SecretVolumeTest, LinkOutOfTheVolume_IsRefused) {
  std::ofstream(root_ / "host-file") << "not yours";
  std::filesystem::create_symlink(root_ / "host-file", volume_ / "escape");
  auto volumes = secretVolumes(spec(volume_));
  ASSERT_FALSE(volumes);
  EXPECT_NE(volumes.error().message().find("escape links out of the volume"), std::string::npos)
      << volumes.error().message();
}

TEST_F(SecretVolumeTest, OverOneMiBOrMissing_IsAnErrorNamingIt) {
  std::ofstream(volume_ / "big") << std::string(runtime::kMaxSecretBytes + 1, 'x');
  auto big = secretVolumes(spec(volume_));
  ASSERT_FALSE(big);
  EXPECT_NE(big.error().message().find("big is over 1 MiB"), std::string::npos);
  std::filesystem::remove(volume_ / "big");
  auto missing = secretVolumes(spec(root_ / "pods/uid-1/volumes/kubernetes.io~projected/gone"));
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message().find("is not a readable directory"), std::string::npos);
}

TEST(ExecProcess, CtrProcess_KeepsContainerSettings_TakesArgsEnvCwdUserTerminal) {
  auto container = bundleProcess(ctrSpec(), "t1", false);
  ASSERT_TRUE(container.has_value());
  const std::string from_ctr = R"({"args": ["ps"], "env": ["X=1"], "cwd": "/var",
      "user": {"uid": 5, "gid": 6}, "terminal": false, "capabilities": {"bounding": []}})";
  auto json = execProcessJson(container->oci_spec, from_ctr, /*terminal=*/true);
  ASSERT_TRUE(json.has_value()) << json.error().message();
  auto process = nlohmann::json::parse(*json);
  EXPECT_EQ(process["args"], nlohmann::json::array({"ps"}));
  EXPECT_EQ(process["env"], nlohmann::json::array({"X=1"}));
  EXPECT_EQ(process["cwd"], "/var");
  EXPECT_EQ(process["user"]["uid"], 5);
  EXPECT_EQ(process["user"]["gid"], 6);
  EXPECT_EQ(process["terminal"], true);  // the request's terminal flag wins
  // Capabilities stay the container's (as for its init), not ctr's empty set.
  EXPECT_EQ(process["capabilities"], container->oci_spec["process"]["capabilities"]);
}

TEST(ExecProcess, NotJsonOrNoArgs_IsInvalidArgument) {
  auto bad = execProcessJson(nlohmann::json::object(), "{nope", false);
  ASSERT_FALSE(bad.has_value());
  EXPECT_TRUE(bad.error().is(Errc::kInvalidArgument));
  auto empty = execProcessJson(nlohmann::json::object(), R"({"args": []})", false);
  ASSERT_FALSE(empty.has_value());
  EXPECT_TRUE(empty.error().is(Errc::kInvalidArgument));
}

TEST(UpdateResources, EmptyIsOk_ChangesAreUnsupported_GarbageIsInvalid) {
  EXPECT_TRUE(checkUpdateResources("", "").has_value());
  EXPECT_TRUE(checkUpdateResources("x", "{}").has_value());
  auto change = checkUpdateResources("x", R"({"cpu": {"quota": 50000}})");
  ASSERT_FALSE(change.has_value());
  EXPECT_TRUE(change.error().is(Errc::kUnsupported));
  auto garbage = checkUpdateResources("x", "[1, 2]");
  ASSERT_FALSE(garbage.has_value());
  EXPECT_TRUE(garbage.error().is(Errc::kInvalidArgument));
}

TEST(Events, ForwardRequest_CarriesBareTypeUrlAndNamespace) {
  cpb::TaskExit exit;
  exit.set_container_id("t1");
  exit.set_exit_status(7);
  cpb::Timestamp when;
  when.set_seconds(1700000000);
  const std::string bytes =
      forwardRequest("default", "/tasks/exit", "containerd.events.TaskExit",
                     exit.SerializeAsString(), when);
  cpb::ForwardRequest parsed;
  ASSERT_TRUE(parsed.ParseFromString(bytes));
  EXPECT_EQ(parsed.envelope().namespace_(), "default");
  EXPECT_EQ(parsed.envelope().topic(), "/tasks/exit");
  EXPECT_EQ(parsed.envelope().timestamp().seconds(), 1700000000);
  EXPECT_EQ(parsed.envelope().event().type_url(), "containerd.events.TaskExit");
  cpb::TaskExit back;
  ASSERT_TRUE(back.ParseFromString(parsed.envelope().event().value()));
  EXPECT_EQ(back.exit_status(), 7u);
}

}  // namespace
}  // namespace nv::shim
