// SPDX-License-Identifier: Apache-2.0
// From containerd's Create request to a nanovisor sandbox: the rootfs mounts (overlay or bind
// snapshots, or the spec's root.path when the list is empty) become the directories of a
// read-only EROFS disk; the bundle's config.json process settings become the OCI spec the
// guest agent applies. Pure functions, unit-tested without containerd.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/rate_limit.h"
#include "common/result.h"
#include "runtime/sandbox.h"

namespace nv::shim {

struct MountSpec {
  std::string type;
  std::string source;
  std::vector<std::string> options;
};

// Directories in overlayfs order: lowerdirs first is the top; upperdir may be empty.
struct RootfsDirs {
  std::vector<std::string> lowerdirs;
  std::string upperdir;
};

// Errors: more than one mount, an unsupported mount type, an overlay without lowerdir.
[[nodiscard]] Result<RootfsDirs> rootfsDirs(const std::vector<MountSpec>& mounts,
                                            const std::string& bundle,
                                            const nlohmann::json& bundle_spec);

// What the sandbox needs from the bundle's config.json.
struct BundleProcess {
  nlohmann::json oci_spec;              // the spec the agent applies (runtime::buildOciSpec)
  std::vector<std::string> command;
  std::string hostname;
  uint64_t memory_limit_bytes = 0;      // linux.resources.memory.limit, 0 if none
  double cpus = 0;                      // quota / period, 0 if none
};

// Errors: no process.args, malformed fields.
[[nodiscard]] Result<BundleProcess> bundleProcess(const nlohmann::json& bundle_spec,
                                                  const std::string& task_id, bool terminal);

// The OCI process the agent runs for a Task Exec: containerd's process object (`process_json`,
// the JSON value of ExecProcessRequest.spec) mapped the way Create maps the init's: args, env,
// cwd, uid/gid, terminal (`terminal` from the request wins when set); everything else (caps,
// rlimits, ...) comes from the container's own spec, as for the init. Errors: not JSON, no args.
[[nodiscard]] Result<std::string> execProcessJson(const nlohmann::json& container_spec,
                                                  const std::string& process_json,
                                                  bool terminal);

// Checks an Update request's resources (`type_url` + JSON `value` of OCI LinuxResources).
// Empty resources: nothing to do (ok). Malformed: kInvalidArgument. Any actual change:
// kUnsupported naming why (the guest agent cannot change a running container's limits yet).
[[nodiscard]] Result<void> checkUpdateResources(const std::string& type_url,
                                                const std::string& value);

// A task's place in a Kubernetes pod, from CRI's config.json annotations
// (io.kubernetes.cri.container-type, io.kubernetes.cri.sandbox-id).
struct PodRole {
  bool sandbox = false;        // the pod's sandbox (pause) container: it creates the pod's VM
  std::string sandbox_id;      // a member container: the sandbox's task id (empty otherwise)
  [[nodiscard]] bool member() const { return !sandbox_id.empty(); }
};
[[nodiscard]] PodRole podRole(const nlohmann::json& bundle_spec, const std::string& task_id);

// The shim's group key for `start`: a pod member's sandbox id, else the task id.
[[nodiscard]] std::string shimGroup(const nlohmann::json& bundle_spec, const std::string& task_id);

// Pod sizing for the VM, from the sandbox's annotations io.kubernetes.cri.sandbox-memory
// (bytes), -cpu-quota and -cpu-period (kubelet >= 1.23 sends them); zeros when absent.
struct PodResources {
  double cpus = 0;
  uint64_t memory_limit_bytes = 0;
};
[[nodiscard]] PodResources podResources(const nlohmann::json& bundle_spec);

// The disk rate limits a task (or a pod's sandbox, through CRI's pod_annotations) asks for:
// annotations io.nanovisor.disk-bps and io.nanovisor.disk-iops, "RATE[:BURST]" as the CLI's
// --disk-bps/--disk-iops. A malformed value is an error naming the annotation.
[[nodiscard]] Result<DiskRateLimit> diskRateLimit(const nlohmann::json& bundle_spec);

// A pod member's namespaces: where the bundle's spec joins a namespace by path (CRI points
// pid, ipc, uts and network at the sandbox's), `oci_spec` joins it too; the guest agent
// takes such a path as "the sandbox container's namespace of that type".
void joinPodNamespaces(const nlohmann::json& bundle_spec, nlohmann::json& oci_spec);

// The bundle's bind mounts of regular files (CRI's /etc/hosts, /etc/resolv.conf,
// /etc/hostname, /dev/termination-log) as copies for the guest; read-only when the mount says
// "ro". Directory binds are not carried (the VM cannot see host directories; CRI's /dev/shm is
// the agent's). Errors: a file over 64 KiB or unreadable.
[[nodiscard]] Result<std::vector<runtime::FileConfig>> bindFileCopies(
    const nlohmann::json& bundle_spec);

// Kubernetes secret and projected volumes: binds of kubelet's directories
// .../volumes/kubernetes.io~secret/<name> and .../volumes/kubernetes.io~projected/<name> (by
// their source path) become in-memory copies for guest tmpfs mounts at their destinations —
// never shares of the host directory. kubelet's atomic-writer layout (`..data` ->
// `..<timestamp>/`, each key a link into `..data`) is followed inside the volume; its own
// entries (names starting with "..") are skipped. A file keeps its mode's read bits.
// Read once at create: later updates by kubelet do not reach the guest. Errors: a link out of
// the volume, more than 64 files, a file over 1 MiB, over 3 MiB in all, unreadable.
[[nodiscard]] Result<std::vector<runtime::SecretVolumeConfig>> secretVolumes(
    const nlohmann::json& bundle_spec);

// The VM's memory: the configured default, or the container limit plus room for the guest
// kernel and agent when that is larger (the CLI's rule).
[[nodiscard]] uint64_t vmMemoryMib(uint64_t default_mib, uint64_t memory_limit_bytes);

}  // namespace nv::shim
