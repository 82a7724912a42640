// SPDX-License-Identifier: Apache-2.0
#include "runtime/jail.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <set>

#include "common/syscall.h"

namespace nv::runtime {
namespace {

// One step of the jail's setup, prepared by the parent so that the child (a raw clone3 of a
// possibly multi-threaded process) only makes system calls: no allocation, no locks.
struct Step {
  enum class Kind { kMkdir, kTouch, kBind, kRemount, kSymlink, kMknod, kMoveMount, kProc };
  Kind kind;
  std::string path;         // absolute host path below the jail root
  std::string source;       // kBind: host source; kSymlink: link target
  unsigned long flags = 0;  // kRemount: mount flags
  mode_t mode = 0;
  dev_t device = 0;
  int fd = -1;              // kMoveMount: a detached mount (open_tree) prepared by the parent
  std::string what;         // for the error message
};

// What the child reports when a step fails: errno and the step (-1: a fixed step, `fixed`).
struct Report {
  int err = 0;
  int step = -1;
  int fixed = 0;
};

enum Fixed : int {
  kJoinCgroup = 1, kMakePrivate, kMountTmpfs, kChdirRoot, kPivotRoot, kDetachOldRoot,
  kRemountRoot, kHostname, kRlimit, kDropCaps, kSetGroups, kSetGid, kSetUid, kClearCaps,
  kNoNewPrivs, kDeathSignal, kStdio, kSession, kExec, kCgroupNs,
};

const char* fixedName(int fixed) {
  switch (fixed) {
    case kJoinCgroup: return "joining the sandbox cgroup";
    case kCgroupNs: return "new cgroup namespace";
    case kMakePrivate: return "making / private";
    case kMountTmpfs: return "mounting the jail's tmpfs";
    case kChdirRoot: return "chdir to the jail";
    case kPivotRoot: return "pivot_root";
    case kDetachOldRoot: return "detaching the old root";
    case kRemountRoot: return "remounting the jail root read-only";
    case kHostname: return "sethostname";
    case kRlimit: return "setrlimit";
    case kDropCaps: return "dropping the capability bounding set";
    case kSetGroups: return "setgroups";
    case kSetGid: return "setresgid";
    case kSetUid: return "setresuid";
    case kClearCaps: return "capset";
    case kNoNewPrivs: return "no_new_privs";
    case kDeathSignal: return "PR_SET_PDEATHSIG";
    case kStdio: return "stdio";
    case kSession: return "setsid";
    case kExec: return "exec";
    default: return "setup";
  }
}

bool readableBy(const struct stat& st, uint32_t uid, uint32_t gid, bool dir) {
  const mode_t need_user = dir ? (S_IRUSR | S_IXUSR) : S_IRUSR;
  const mode_t need_group = dir ? (S_IRGRP | S_IXGRP) : S_IRGRP;
  const mode_t need_other = dir ? (S_IROTH | S_IXOTH) : S_IROTH;
  if (st.st_uid == uid) return (st.st_mode & need_user) == need_user;
  if (st.st_gid == gid) return (st.st_mode & need_group) == need_group;
  return (st.st_mode & need_other) == need_other;
}

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (char c : s) {
    h ^= static_cast<uint8_t>(c);
    h *= 1099511628211ull;
  }
  return h;
}

// Real uids of every process on the host (from /proc/<pid>/status).
std::set<uint32_t> liveUids() {
  std::set<uint32_t> uids;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream status(entry.path() / "status");
    for (std::string line; std::getline(status, line);) {
      if (line.rfind("Uid:", 0) == 0) {
        uids.insert(static_cast<uint32_t>(std::strtoul(line.c_str() + 4, nullptr, 10)));
        break;
      }
    }
  }
  return uids;
}

int lastCapability() {
  std::ifstream in("/proc/sys/kernel/cap_last_cap");
  int last = 40;
  in >> last;
  return last;
}

// The child: runs the prepared steps, drops privileges and execs. Async-signal-safe only.
[[noreturn]] void jailChild(const JailSpec& jail, const std::vector<Step>& steps,
                            const std::vector<int>& cgroup_fds, const SpawnOptions& options,
                            char* const* argv, char* const* envp, int last_cap, int stdin_fd,
                            int stdout_fd, int stderr_fd, int report_fd) {
  auto die = [&](int fixed, int step = -1) {
    Report r{errno, step, fixed};
    (void)!::write(report_fd, &r, sizeof r);
    ::_exit(127);
  };
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int sig = 1; sig < NSIG; ++sig) ::signal(sig, SIG_DFL);

  for (int fd : cgroup_fds) {
    if (::write(fd, "0", 1) != 1) die(kJoinCgroup);
  }
  if (::unshare(CLONE_NEWCGROUP) != 0) die(kCgroupNs);  // rooted at the sandbox cgroup
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) die(kMakePrivate);
  // No MS_NODEV: the device nodes below live on this tmpfs.
  if (::mount("nanovisor-jail", jail.root.c_str(), "tmpfs", MS_NOSUID | MS_NOEXEC,
              "mode=0755,size=1m,nr_inodes=256") != 0) {
    die(kMountTmpfs);
  }
  for (size_t i = 0; i < steps.size(); ++i) {
    const Step& s = steps[i];
    const int index = static_cast<int>(i);
    switch (s.kind) {
      case Step::Kind::kMkdir:
        if (::mkdir(s.path.c_str(), s.mode) != 0 && errno != EEXIST) die(0, index);
        break;
      case Step::Kind::kTouch: {
        const int fd = ::open(s.path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, s.mode);
        if (fd < 0) die(0, index);
        ::close(fd);
        break;
      }
      case Step::Kind::kBind:
        if (::mount(s.source.c_str(), s.path.c_str(), nullptr, MS_BIND, nullptr) != 0) {
          die(0, index);
        }
        break;
      case Step::Kind::kRemount:
        if (::mount(nullptr, s.path.c_str(), nullptr, MS_BIND | MS_REMOUNT | s.flags, nullptr) !=
            0) {
          die(0, index);
        }
        break;
      case Step::Kind::kSymlink:
        if (::symlink(s.source.c_str(), s.path.c_str()) != 0) die(0, index);
        break;
      case Step::Kind::kMoveMount:
        if (::move_mount(s.fd, "", AT_FDCWD, s.path.c_str(), MOVE_MOUNT_F_EMPTY_PATH) != 0) {
          die(0, index);
        }
        break;
      case Step::Kind::kProc:
        if (::mount("proc", s.path.c_str(), "proc", s.flags, "subset=pid,hidepid=invisible") !=
            0) {
          die(0, index);
        }
        break;
      case Step::Kind::kMknod:
        if (::mknod(s.path.c_str(), s.mode, s.device) != 0 ||
            ::chmod(s.path.c_str(), s.mode & 07777) != 0) {
          die(0, index);
        }
        if (s.source == "owned" && ::chown(s.path.c_str(), jail.uid, jail.gid) != 0) {
          die(0, index);
        }
        break;
    }
  }
  if (::chdir(jail.root.c_str()) != 0) die(kChdirRoot);
  if (::syscall(SYS_pivot_root, ".", ".") != 0) die(kPivotRoot);
  if (::umount2(".", MNT_DETACH) != 0) die(kDetachOldRoot);
  if (::chdir("/") != 0) die(kChdirRoot);
  if (::mount(nullptr, "/", nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC,
              nullptr) != 0) {
    die(kRemountRoot);
  }
  static const char kHostnameText[] = "nanovisor-vmm";
  if (::sethostname(kHostnameText, sizeof kHostnameText - 1) != 0) die(kHostname);

  const rlimit files{jail.max_open_files, jail.max_open_files};
  const rlimit locked{jail.max_locked_bytes, jail.max_locked_bytes};
  const rlimit procs{jail.max_processes, jail.max_processes};
  if (::setrlimit(RLIMIT_NOFILE, &files) != 0 || ::setrlimit(RLIMIT_MEMLOCK, &locked) != 0 ||
      ::setrlimit(RLIMIT_NPROC, &procs) != 0) {
    die(kRlimit);
  }
  for (int cap = 0; cap <= last_cap; ++cap) {
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) die(kDropCaps);
  }
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
    die(kDropCaps);
  }
  if (::setgroups(0, nullptr) != 0) die(kSetGroups);
  if (::setresgid(jail.gid, jail.gid, jail.gid) != 0) die(kSetGid);
  if (::setresuid(jail.uid, jail.uid, jail.uid) != 0) die(kSetUid);
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (::syscall(SYS_capset, &header, data) != 0) die(kClearCaps);
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) die(kNoNewPrivs);
  // After the uid change: changing credentials clears the parent-death signal.
  if (options.die_with_parent && ::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) die(kDeathSignal);
  if (options.new_session && ::setsid() < 0) die(kSession);
  if ((stdin_fd >= 0 && ::dup2(stdin_fd, 0) < 0) || (stdout_fd >= 0 && ::dup2(stdout_fd, 1) < 0) ||
      (stderr_fd >= 0 && ::dup2(stderr_fd, 2) < 0)) {
    die(kStdio);
  }
  // Only stdio and the report pipe (as fd 3, close-on-exec) survive.
  if (::dup3(report_fd, 3, O_CLOEXEC) < 0) die(kStdio);
  report_fd = 3;
  ::close_range(4, ~0U, 0);
  ::execve(argv[0], argv, envp);
  die(kExec);
  ::_exit(127);
}

std::vector<char*> cStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// A user namespace whose only mapping is `inside` -> `outside` for uids and gids (`inside`
// is the id a mount idmapped with it shows as `outside`). Its process ends before return.
Result<UniqueFd> mappingNamespace(uid_t inside_uid, uid_t outside_uid, gid_t inside_gid,
                                  gid_t outside_gid) {
  int hold[2];
  if (::pipe2(hold, O_CLOEXEC) != 0) return failErrno("pipe2");
  UniqueFd hold_read(hold[0]);
  UniqueFd hold_write(hold[1]);
  clone_args args{};
  args.flags = CLONE_NEWUSER;
  args.exit_signal = SIGCHLD;
  const long pid = ::syscall(SYS_clone3, &args, sizeof args);
  if (pid < 0) return failErrno("jail: clone3 into a new user namespace");
  if (pid == 0) {
    // Waits until the parent has the namespace's fd (the write end closes). No allocation.
    ::close(hold_write.get());
    char byte = 0;
    (void)!::read(hold_read.get(), &byte, 1);
    ::_exit(0);
  }
  hold_read.reset();
  auto reap = [&] {
    hold_write.reset();
    int status = 0;
    (void)retryOnEintr([&] { return ::waitpid(static_cast<pid_t>(pid), &status, 0); });
  };
  const std::string proc = "/proc/" + std::to_string(pid);
  auto writeMap = [&](const std::string& file, uint32_t inside, uint32_t outside) {
    std::ofstream out(proc + "/" + file);
    out << inside << " " << outside << " 1\n";
    out.flush();
    return static_cast<bool>(out);
  };
  if (!writeMap("uid_map", inside_uid, outside_uid) ||
      !writeMap("gid_map", inside_gid, outside_gid)) {
    const int err = errno;
    reap();
    return failErrno(err, "jail: writing the id map of a user namespace");
  }
  UniqueFd ns(::open((proc + "/ns/user").c_str(), O_RDONLY | O_CLOEXEC));
  const int err = errno;
  reap();
  if (!ns) return failErrno(err, "jail: open " + proc + "/ns/user");
  return ns;
}

// A detached copy of m.source whose owner is the jail's uid/gid (JailMount::map_owner).
Result<UniqueFd> ownerMappedMount(const JailMount& m, const JailSpec& jail) {
  struct stat st {};
  if (::stat(m.source.c_str(), &st) != 0) return failErrno("jail: " + m.source.string());
  NV_ASSIGN_OR_RETURN(UniqueFd userns, mappingNamespace(st.st_uid, jail.uid, st.st_gid, jail.gid));
  UniqueFd tree(::open_tree(AT_FDCWD, m.source.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC));
  if (!tree) return failErrno("jail: open_tree " + m.source.string());
  mount_attr attr{};
  attr.attr_set = MOUNT_ATTR_IDMAP | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC |
                  (m.writable ? 0 : MOUNT_ATTR_RDONLY);
  attr.userns_fd = static_cast<decltype(attr.userns_fd)>(userns.get());
  if (::mount_setattr(tree.get(), "", AT_EMPTY_PATH, &attr, sizeof attr) != 0) {
    const std::string why = std::strerror(errno);
    return fail(Errc::kUnsupported,
                "the jailed VMM needs an ID-mapped mount of " + m.source.string() + " (" + why +
                    "; Linux 5.12+, 6.3+ on tmpfs): use a directory on ext4/xfs/btrfs or set "
                    "jail = false in /etc/nanovisor/config.toml");
  }
  return tree;
}

// The steps that build the jail's tree under `jail.root`; `detached[i]` is the prepared
// mount of jail.mounts[i] when it is map_owner.
Result<std::vector<Step>> planSteps(const JailSpec& jail, const std::vector<UniqueFd>& detached) {
  std::vector<Step> steps;
  std::set<std::string> dirs;
  const std::string root = jail.root.string();
  auto mkdirs = [&](const std::filesystem::path& inside) {
    // Every ancestor of `inside` (an absolute jail path), outermost first.
    std::filesystem::path partial = "/";
    for (const auto& part : inside.parent_path().relative_path()) {
      partial /= part;
      if (dirs.insert(partial.string()).second) {
        steps.push_back({.kind = Step::Kind::kMkdir, .path = root + partial.string(),
                         .mode = 0755, .what = "mkdir " + partial.string()});
      }
    }
  };
  for (size_t i = 0; i < jail.mounts.size(); ++i) {
    const JailMount& m = jail.mounts[i];
    if (m.target.empty() || m.target.front() != '/' || m.target.find("..") != std::string::npos) {
      return fail(Errc::kInvalidArgument, "jail mount target '" + m.target + "' is not a clean absolute path");
    }
    struct stat st {};
    if (::stat(m.source.c_str(), &st) != 0) return failErrno("jail: " + m.source.string());
    const bool dir = S_ISDIR(st.st_mode);
    mkdirs(m.target);
    if (dir) {
      if (dirs.insert(m.target).second) {
        steps.push_back({.kind = Step::Kind::kMkdir, .path = root + m.target, .mode = 0755,
                         .what = "mkdir " + m.target});
      }
    } else {
      steps.push_back({.kind = Step::Kind::kTouch, .path = root + m.target, .mode = 0644,
                       .what = "create " + m.target});
    }
    if (m.map_owner) {
      steps.push_back({.kind = Step::Kind::kMoveMount, .path = root + m.target,
                       .fd = detached.at(i).get(),
                       .what = "ID-mapped bind of " + m.source.string() + " to " + m.target});
      continue;
    }
    steps.push_back({.kind = Step::Kind::kBind, .path = root + m.target,
                     .source = m.source.string(),
                     .what = "bind " + m.source.string() + " to " + m.target});
    unsigned long flags = MS_NOSUID | MS_NODEV;
    if (!m.writable) flags |= MS_RDONLY;
    if (!m.exec) flags |= MS_NOEXEC;
    steps.push_back({.kind = Step::Kind::kRemount, .path = root + m.target, .flags = flags,
                     .what = "remount " + m.target});
  }
  for (const auto& [path, target] : jail.symlinks) {
    mkdirs(path);
    steps.push_back({.kind = Step::Kind::kSymlink, .path = root + path, .source = target,
                     .what = "symlink " + path});
  }
  if (jail.proc_self) {
    steps.push_back({.kind = Step::Kind::kMkdir, .path = root + "/proc", .mode = 0555,
                     .what = "mkdir /proc"});
    steps.push_back({.kind = Step::Kind::kProc, .path = root + "/proc",
                     .flags = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                     .what = "mount /proc (subset=pid)"});
  }
  mkdirs("/dev/null");
  struct Node {
    const char* name;
    unsigned major;
    unsigned minor;
    mode_t mode;
    bool owned;
  };
  std::vector<Node> nodes = {{"null", 1, 3, 0666, false}, {"zero", 1, 5, 0666, false},
                             {"urandom", 1, 9, 0666, false}};
  if (jail.kvm) nodes.push_back({"kvm", 10, 232, 0600, true});
  for (const auto& n : nodes) {
    steps.push_back({.kind = Step::Kind::kMknod, .path = root + "/dev/" + n.name,
                     .source = n.owned ? "owned" : "", .mode = S_IFCHR | n.mode,
                     .device = makedev(n.major, n.minor), .what = std::string("mknod /dev/") + n.name});
  }
  return steps;
}

}  // namespace

void addSystemFiles(JailSpec& jail) {
  jail.mounts.push_back({.source = "/usr", .target = "/usr", .exec = true});
  for (const char* top : {"/lib", "/lib64", "/bin"}) {
    std::error_code ec;
    const auto status = std::filesystem::symlink_status(top, ec);
    if (ec || !std::filesystem::exists(status)) continue;
    if (std::filesystem::is_symlink(status)) {
      jail.symlinks.emplace_back(top, std::filesystem::read_symlink(top, ec).string());
    } else if (std::filesystem::is_directory(status)) {
      jail.mounts.push_back({.source = top, .target = top, .exec = true});
    }
  }
  if (std::filesystem::exists("/etc/ld.so.cache")) {
    jail.mounts.push_back({.source = "/etc/ld.so.cache", .target = "/etc/ld.so.cache"});
  }
}

uint32_t allocateJailId(const std::string& id) {
  const std::set<uint32_t> used = liveUids();
  const auto start = static_cast<uint32_t>(fnv1a(id) % kJailIdCount);
  for (uint32_t i = 0; i < kJailIdCount; ++i) {
    const uint32_t uid = kJailIdBase + (start + i) % kJailIdCount;
    if (!used.contains(uid)) return uid;
  }
  return kJailIdBase + start;  // 65536 live VMMs: share (cannot happen on one host)
}

Result<void> checkJail(const JailSpec& jail) {
  if (::geteuid() != 0) {
    return fail(Errc::kPermission,
                "the VMM jail needs root (or set jail = false in the config to run the VMM "
                "unjailed as the calling user)");
  }
  if (jail.uid == 0 || jail.gid == 0) {
    return fail(Errc::kInvalidArgument, "the jail's uid and gid must not be root");
  }
  if (!std::filesystem::is_directory(jail.root)) {
    return fail(Errc::kNotFound, "jail root " + jail.root.string() + " does not exist");
  }
  for (const auto& m : jail.mounts) {
    struct stat st {};
    if (::stat(m.source.c_str(), &st) != 0) return failErrno("jail: " + m.source.string());
    if (!m.writable && !m.map_owner && !readableBy(st, jail.uid, jail.gid, S_ISDIR(st.st_mode))) {
      char mode[8];
      std::snprintf(mode, sizeof mode, "%04o", st.st_mode & 07777);
      return fail(Errc::kPermission,
                  "the jailed VMM (uid " + std::to_string(jail.uid) + ") cannot read " +
                      m.source.string() + " (mode " + mode +
                      "); make it world-readable or set jail = false in the config");
    }
  }
  return {};
}

Result<Subprocess> spawnJailed(const JailSpec& jail, const SpawnOptions& options) {
  if (options.argv.empty() || options.argv[0].empty() || options.argv[0].front() != '/') {
    return fail(Errc::kInvalidArgument, "jail: the program must be an absolute path");
  }
  NV_TRY(checkJail(jail));
  // Prepared here, moved into the jail by the child; closing an fd the child did not move
  // (an error on the way) drops its mount.
  std::vector<UniqueFd> detached(jail.mounts.size());
  for (size_t i = 0; i < jail.mounts.size(); ++i) {
    if (jail.mounts[i].map_owner) {
      NV_ASSIGN_OR_RETURN(detached[i], ownerMappedMount(jail.mounts[i], jail));
    }
  }
  NV_ASSIGN_OR_RETURN(std::vector<Step> steps, planSteps(jail, detached));
  std::vector<std::string> argv_strings = options.argv;
  std::vector<std::string> env_strings = {"PATH=/usr/bin:/bin"};
  std::vector<char*> argv = cStrings(argv_strings);
  std::vector<char*> envp = cStrings(env_strings);

  std::vector<UniqueFd> cgroup_files;
  std::vector<int> cgroup_fds;
  for (const auto& procs : jail.cgroup_procs) {
    UniqueFd fd(::open(procs.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd) return failErrno("open " + procs.string());
    cgroup_fds.push_back(fd.get());
    cgroup_files.push_back(std::move(fd));
  }
  UniqueFd stdin_fd(::open(options.stdin_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!stdin_fd) return failErrno("open " + options.stdin_path);
  UniqueFd stdout_fd;
  UniqueFd stderr_fd;
  if (!options.stdout_path.empty()) {
    stdout_fd.reset(::open(options.stdout_path.c_str(),
                           O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    if (!stdout_fd) return failErrno("open " + options.stdout_path);
  }
  if (options.stderr_path == "=stdout") {
    stderr_fd.reset(::fcntl(stdout_fd ? stdout_fd.get() : 1, F_DUPFD_CLOEXEC, 3));
  } else if (!options.stderr_path.empty()) {
    stderr_fd.reset(::open(options.stderr_path.c_str(),
                           O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    if (!stderr_fd) return failErrno("open " + options.stderr_path);
  }
  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) return failErrno("pipe2");
  UniqueFd report_read(report[0]);
  UniqueFd report_write(report[1]);
  const int last_cap = lastCapability();

  int pidfd = -1;
  clone_args args{};
  args.flags = CLONE_PIDFD | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS |
               CLONE_NEWNET;
  args.pidfd = reinterpret_cast<uintptr_t>(&pidfd);  // NOLINT: the kernel ABI takes an address
  args.exit_signal = SIGCHLD;
  const long pid = ::syscall(SYS_clone3, &args, sizeof args);
  if (pid < 0) return failErrno("jail: clone3 into new namespaces");
  if (pid == 0) {
    jailChild(jail, steps, cgroup_fds, options, argv.data(), envp.data(), last_cap,
              stdin_fd.get(), stdout_fd.get(), stderr_fd.get(), report_write.get());
  }
  report_write.reset();
  Subprocess child = Subprocess::adopt(static_cast<pid_t>(pid), UniqueFd(pidfd));
  Report r;
  const ssize_t n = retryOnEintr([&] { return ::read(report_read.get(), &r, sizeof r); });
  if (n == sizeof r) {
    (void)child.wait(std::chrono::milliseconds(1000));
    const std::string what =
        r.step >= 0 && static_cast<size_t>(r.step) < steps.size() ? steps[static_cast<size_t>(r.step)].what
        : r.fixed == kExec ? "exec " + options.argv[0]
                           : fixedName(r.fixed);
    return failErrno(r.err, "jail: " + what);
  }
  return child;
}

}  // namespace nv::runtime
