// SPDX-License-Identifier: Apache-2.0
// `nanovisor-agent --nv-child`: container setup and process application before execve.
//
// Sync protocol on kSyncFd (a stream socket to the agent), one record per line:
//   container: [pod container: helper -> "P<pid>\n" (the container it cloned after joining the
//              sandbox's namespaces) and exits, then the container continues:]
//              child -> "R\n" once set up; agent -> "S" to start; child execs (the socket is
//              close-on-exec, so the agent sees EOF) or sends "E<message>\n" and exits.
//   exec:      helper -> "P<pid>\n" (the process it cloned into the container's namespaces)
//              and exits; that process execs or sends "E<message>\n".
#include "agent/child.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <string_view>

#include "agent/launch_config.h"
#include "agent/passwd.h"
#include "agent/seccomp_filter.h"
#include "common/syscall.h"
#include "common/unique_fd.h"

namespace nv::agent {
namespace {

constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

void sendRecord(std::string_view record) {
  std::string line(record);
  for (auto& c : line) {
    if (c == '\n') {
      c = ' ';
    }
  }
  line += '\n';
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    ssize_t n = retryOnEintr([&] { return ::write(kSyncFd, p, left); });
    if (n <= 0) {
      return;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
}

// Opens a pty in the container's own devpts (so ttyname() works there), makes the slave
// fds 0-2 and hands the master to the agent: record "T" carrying it (SCM_RIGHTS).
Result<void> setupTerminal(uint16_t rows, uint16_t columns) {
  UniqueFd master(::open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!master) {
    return failErrno("terminal: open /dev/ptmx (does the spec mount devpts?)");
  }
  if (::unlockpt(master.get()) < 0) {
    return failErrno("terminal: unlockpt");
  }
  char name[128];
  if (::ptsname_r(master.get(), name, sizeof(name)) != 0) {
    return failErrno("terminal: ptsname");
  }
  UniqueFd slave(::open(name, O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!slave) {
    return failErrno(std::string("terminal: open ") + name);
  }
  if (rows > 0 && columns > 0) {
    winsize ws{rows, columns, 0, 0};
    ::ioctl(slave.get(), TIOCSWINSZ, &ws);
  }
  for (int fd = 0; fd < 3; ++fd) {
    if (::dup2(slave.get(), fd) < 0) {
      return failErrno("terminal: dup2");
    }
  }
  if (sendWithFd(kSyncFd, "T\n", 2, master.get()) < 0) {
    return failErrno("terminal: send master to the agent");
  }
  return {};
}

[[noreturn]] void die(const Error& error) {
  sendRecord("E" + error.message());
  _exit(127);
}

Result<std::string> readAll(int fd) {
  std::string out;
  char buf[65536];
  while (true) {
    ssize_t n = retryOnEintr([&] { return ::read(fd, buf, sizeof(buf)); });
    if (n < 0) {
      return failErrno("read launch config");
    }
    if (n == 0) {
      return out;
    }
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > 4 * kMaxSpecBytes) {
      return fail(Errc::kTooLarge, "launch config too large");
    }
  }
}

Result<void> mkdirAll(const std::string& path, mode_t mode = 0755) {
  for (size_t pos = 1; pos <= path.size(); ++pos) {
    if (pos == path.size() || path[pos] == '/') {
      std::string part = path.substr(0, pos);
      if (::mkdir(part.c_str(), mode) < 0 && errno != EEXIST) {
        return failErrno("mkdir " + part);
      }
    }
  }
  return {};
}

// Creates the mount point: a directory, or an empty file when binding a non-directory.
Result<void> makeMountPoint(const std::string& target, bool file) {
  if (!file) {
    return mkdirAll(target);
  }
  auto slash = target.rfind('/');
  if (slash != std::string::npos && slash > 0) {
    NV_TRY(mkdirAll(target.substr(0, slash)));
  }
  int fd = ::open(target.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0 && errno != EEXIST && errno != EISDIR) {
    return failErrno("create " + target);
  }
  if (fd >= 0) {
    ::close(fd);
  }
  return {};
}

Result<void> mountOne(const std::string& rootfs, const MountSpec& m) {
  NV_ASSIGN_OR_RETURN(std::string target, secureJoin(rootfs, m.destination));
  MountFlags mf = parseMountOptions(m.options);
  std::string type = m.type;
  if (type == "bind") {
    mf.bind = true;
  }
  if (mf.bind) {
    struct stat st {};
    if (::stat(m.source.c_str(), &st) < 0) {
      return failErrno("bind mount source " + m.source);
    }
    NV_TRY(makeMountPoint(target, !S_ISDIR(st.st_mode)));
    unsigned long flags = MS_BIND | (mf.recursive ? static_cast<unsigned long>(MS_REC) : 0UL);
    if (::mount(m.source.c_str(), target.c_str(), nullptr, flags, nullptr) < 0) {
      return failErrno("bind mount " + m.source + " on " + m.destination);
    }
    if ((mf.flags & ~static_cast<unsigned long>(MS_REMOUNT)) != 0) {
      if (::mount(nullptr, target.c_str(), nullptr, MS_BIND | MS_REMOUNT | mf.flags, nullptr) < 0) {
        return failErrno("remount " + m.destination);
      }
    }
  } else {
    NV_TRY(mkdirAll(target));
    if (type == "cgroup") {
      type = "cgroup2";
    }
    const char* data = mf.data.empty() ? nullptr : mf.data.c_str();
    if (::mount(m.source.c_str(), target.c_str(), type.c_str(), mf.flags, data) < 0) {
      int err = errno;
      if (type == "sysfs" && (err == EPERM || err == EBUSY)) {
        // Without a new network namespace sysfs cannot be mounted: bind the agent's.
        if (::mount("/sys", target.c_str(), nullptr, MS_BIND | MS_REC, nullptr) < 0 ||
            ::mount(nullptr, target.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY,
                    nullptr) < 0) {
          return failErrno("bind /sys on " + m.destination);
        }
      } else if (type == "cgroup2") {
        // Best effort: a missing cgroup view is not worth failing the container for.
      } else {
        return failErrno(err, "mount " + type + " on " + m.destination);
      }
    }
  }
  if (mf.propagation != 0) {
    if (::mount(nullptr, target.c_str(), nullptr, mf.propagation, nullptr) < 0) {
      return failErrno("set propagation of " + m.destination);
    }
  }
  return {};
}

// /dev basics when the spec mounts a fresh tmpfs on /dev: bind the agent's device nodes
// (works whether or not mknod is allowed) and the usual symlinks.
Result<void> populateDev(const std::string& rootfs) {
  for (const char* name : {"null", "zero", "full", "random", "urandom", "tty"}) {
    std::string target = rootfs + "/dev/" + name;
    struct stat st {};
    if (::lstat(target.c_str(), &st) == 0) {
      continue;
    }
    std::string source = std::string("/dev/") + name;
    if (::stat(source.c_str(), &st) < 0) {
      continue;
    }
    NV_TRY(makeMountPoint(target, true));
    if (::mount(source.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) < 0) {
      return failErrno("bind " + source);
    }
  }
  const std::pair<const char*, const char*> links[] = {
      {"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
      {"/proc/self/fd/2", "stderr"}, {"pts/ptmx", "ptmx"}};
  for (const auto& [to, name] : links) {
    std::string link = rootfs + "/dev/" + name;
    if (::symlink(to, link.c_str()) < 0 && errno != EEXIST) {
      return failErrno("symlink " + link);
    }
  }
  return {};
}

Result<void> setupRootfs(const Spec& spec, const LaunchConfig& config) {
  const std::string& rootfs = config.rootfs;
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) < 0) {
    return failErrno("make / private");
  }
  if (::mount(rootfs.c_str(), rootfs.c_str(), nullptr, MS_BIND | MS_REC, nullptr) < 0) {
    return failErrno("bind rootfs " + rootfs);
  }
  bool dev_is_tmpfs = false;
  for (const auto& m : spec.mounts) {
    NV_TRY(mountOne(rootfs, m));
    if (m.destination == "/dev") {
      dev_is_tmpfs = true;
    }
  }
  for (const auto& v : config.volumes) {
    MountSpec m{v.destination, "bind", v.source, {"rbind", v.readonly ? "ro" : "rw"}};
    NV_TRY(mountOne(rootfs, m));
  }
  if (dev_is_tmpfs) {
    NV_TRY(populateDev(rootfs));
  }
  if (::chdir(rootfs.c_str()) < 0) {
    return failErrno("chdir " + rootfs);
  }
  if (::syscall(SYS_pivot_root, ".", ".") < 0) {
    return failErrno("pivot_root " + rootfs);
  }
  if (::umount2(".", MNT_DETACH) < 0) {
    return failErrno("detach old root");
  }
  if (::chdir("/") < 0) {
    return failErrno("chdir /");
  }
  if (spec.root_readonly &&
      ::mount(nullptr, "/", nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr) < 0) {
    return failErrno("remount / read-only");
  }
  for (const auto& path : spec.masked_paths) {
    struct stat st {};
    if (::stat(path.c_str(), &st) < 0) {
      continue;
    }
    int rc = S_ISDIR(st.st_mode)
                 ? ::mount("tmpfs", path.c_str(), "tmpfs", MS_RDONLY, nullptr)
                 : ::mount("/dev/null", path.c_str(), nullptr, MS_BIND, nullptr);
    if (rc < 0) {
      return failErrno("mask " + path);
    }
  }
  for (const auto& path : spec.readonly_paths) {
    if (::mount(path.c_str(), path.c_str(), nullptr, MS_BIND | MS_REC, nullptr) < 0) {
      if (errno == ENOENT) {
        continue;
      }
      return failErrno("bind " + path);
    }
    if (::mount(nullptr, path.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC,
                nullptr) < 0) {
      return failErrno("remount read-only " + path);
    }
  }
  if ((spec.namespace_flags & CLONE_NEWUTS) != 0 && !spec.hostname.empty() &&
      ::sethostname(spec.hostname.data(), spec.hostname.size()) < 0) {
    return failErrno("sethostname");
  }
  for (const auto& [key, value] : spec.sysctl) {
    std::string path = "/proc/sys/" + key;
    for (auto& c : path) {
      if (c == '.') {
        c = '/';
      }
    }
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd || ::write(fd.get(), value.data(), value.size()) < 0) {
      return failErrno("sysctl " + key);
    }
  }
  return {};
}

uint64_t capMask(const std::vector<int>& caps, int word) {
  uint64_t mask = 0;
  for (int c : caps) {
    if (c / 32 == word) {
      mask |= 1ULL << (c % 32);
    }
  }
  return mask;
}

std::string envValue(const std::vector<std::string>& env, std::string_view key) {
  for (const auto& e : env) {
    if (e.size() > key.size() && e.compare(0, key.size(), key) == 0 && e[key.size()] == '=') {
      return e.substr(key.size() + 1);
    }
  }
  return {};
}

// Applies the OCI process to the calling process (inside the container's root and
// namespaces) up to, not including, seccomp and execve. Returns the resolved binary path.
Result<std::string> applyProcess(ProcessSpec& process, bool tty) {
  for (const auto& r : process.rlimits) {
    rlimit lim{r.soft, r.hard};
    if (::setrlimit(static_cast<__rlimit_resource>(r.resource), &lim) < 0) {
      return failErrno("setrlimit " + std::to_string(r.resource));
    }
  }
  if (::setsid() < 0) {
    return failErrno("setsid");
  }
  if (tty) {
    if (::ioctl(0, TIOCSCTTY, 0) < 0) {
      return failErrno("TIOCSCTTY");
    }
    if (process.console_rows > 0 && process.console_columns > 0) {
      winsize ws{process.console_rows, process.console_columns, 0, 0};
      ::ioctl(0, TIOCSWINSZ, &ws);
    }
  }
  // Users: a name is resolved from the container's own files; a numeric uid still looks up
  // HOME and the supplementary groups of its passwd entry.
  std::string passwd = readSmallFile("/etc/passwd");
  std::string group = readSmallFile("/etc/group");
  UserSpec user = process.user;
  std::string home;
  if (!user.username.empty()) {
    NV_ASSIGN_OR_RETURN(auto resolved, resolveUser(user.username, passwd, group));
    user.uid = resolved.uid;
    user.gid = resolved.gid;
    user.additional_gids.insert(user.additional_gids.end(), resolved.additional_gids.begin(),
                                resolved.additional_gids.end());
    home = resolved.home;
  } else if (auto resolved = resolveUser(std::to_string(user.uid), passwd, group)) {
    home = resolved->home;
  }
  if (envValue(process.env, "HOME").empty()) {
    process.env.push_back("HOME=" + (home.empty() ? std::string("/") : home));
  }
  std::string path_env = envValue(process.env, "PATH");
  NV_ASSIGN_OR_RETURN(std::string binary,
                      lookupExecutable(process.args[0], path_env.empty() ? kDefaultPath : path_env));

  if (process.capabilities) {
    for (int cap = 0; cap < 64; ++cap) {
      if (::prctl(PR_CAPBSET_READ, cap, 0, 0, 0) < 0) {
        break;  // past the kernel's last capability
      }
      bool keep = false;
      for (int c : process.capabilities->bounding) {
        keep = keep || c == cap;
      }
      if (!keep && ::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
        return failErrno("drop capability " + std::to_string(cap) + " from the bounding set");
      }
    }
  }
  if (::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) {
    return failErrno("PR_SET_KEEPCAPS");
  }
  std::vector<gid_t> groups(user.additional_gids.begin(), user.additional_gids.end());
  if (::setgroups(groups.size(), groups.data()) < 0) {
    return failErrno("setgroups");
  }
  if (::setresgid(user.gid, user.gid, user.gid) < 0) {
    return failErrno("setgid " + std::to_string(user.gid));
  }
  if (::setresuid(user.uid, user.uid, user.uid) < 0) {
    return failErrno("setuid " + std::to_string(user.uid));
  }
  if (::prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0) {
    return failErrno("PR_SET_KEEPCAPS");
  }
  if (process.capabilities) {
    const auto& caps = *process.capabilities;
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2]{};
    for (int word = 0; word < 2; ++word) {
      data[word].effective = static_cast<uint32_t>(capMask(caps.effective, word));
      data[word].permitted = static_cast<uint32_t>(capMask(caps.permitted, word));
      data[word].inheritable = static_cast<uint32_t>(capMask(caps.inheritable, word));
    }
    if (::syscall(SYS_capset, &header, data) < 0) {
      return failErrno("capset");
    }
    for (int cap : caps.ambient) {
      if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0) {
        return failErrno("raise ambient capability " + std::to_string(cap));
      }
    }
  }
  if (::chdir(process.cwd.c_str()) < 0) {
    return failErrno("chdir " + process.cwd);
  }
  if (process.no_new_privileges && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
    return failErrno("PR_SET_NO_NEW_PRIVS");
  }
  return binary;
}

[[noreturn]] void execWorkload(const std::string& binary, const ProcessSpec& process,
                               const std::optional<SeccompSpec>& seccomp) {
  std::vector<char*> argv;
  for (const auto& a : process.args) {
    argv.push_back(const_cast<char*>(a.c_str()));
  }
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : process.env) {
    envp.push_back(const_cast<char*>(e.c_str()));
  }
  envp.push_back(nullptr);
  if (seccomp) {
    if (auto loaded = loadSeccomp(*seccomp); !loaded) {
      die(loaded.error());
    }
  }
  ::execve(binary.c_str(), argv.data(), envp.data());
  die(Error::lastErrno("exec " + process.args[0]));
}

// Joins the namespaces of `pid` whose CLONE_NEW* flag is in `flags` (those it does not
// already share). The mount namespace goes last: after it /proc is the container's.
Result<void> joinNamespaces(int pid, int flags) {
  const std::pair<const char*, int> kinds[] = {{"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS},
                                               {"net", CLONE_NEWNET}, {"pid", CLONE_NEWPID},
                                               {"cgroup", CLONE_NEWCGROUP}, {"mnt", CLONE_NEWNS}};
  std::vector<std::pair<UniqueFd, int>> fds;
  for (const auto& [name, flag] : kinds) {
    if ((flags & flag) == 0) {
      continue;
    }
    std::string theirs = "/proc/" + std::to_string(pid) + "/ns/" + name;
    std::string ours = std::string("/proc/self/ns/") + name;
    struct stat a {};
    struct stat b {};
    if (::stat(theirs.c_str(), &a) < 0) {
      return failErrno("container init " + std::to_string(pid) + " is gone");
    }
    if (::stat(ours.c_str(), &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev) {
      continue;
    }
    UniqueFd fd(::open(theirs.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
      return failErrno("open " + theirs);
    }
    fds.emplace_back(std::move(fd), flag);
  }
  for (auto& [fd, flag] : fds) {
    if (::setns(fd.get(), flag) < 0) {
      return failErrno("setns " + std::to_string(flag));
    }
  }
  return {};
}

Result<void> joinContainer(const LaunchConfig& config) {
  if (!config.cgroup_dir.empty()) {
    std::string procs = config.cgroup_dir + "/cgroup.procs";
    UniqueFd fd(::open(procs.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd || ::write(fd.get(), "0", 1) < 0) {
      return failErrno("join cgroup " + config.cgroup_dir);
    }
  }
  return joinNamespaces(config.init_pid, CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET |
                                             CLONE_NEWPID | CLONE_NEWCGROUP | CLONE_NEWNS);
}

[[noreturn]] void runContainer(const LaunchConfig& config) {
  auto spec = parseSpec(config.spec_json);
  if (!spec) {
    die(spec.error());
  }
  if (config.join_flags != 0) {
    // A pod container: this helper joins the sandbox's namespaces, then clones the container
    // (its own mount namespace and whatever else the spec creates). CLONE_PARENT makes it the
    // agent's child, which learns its pid from the "P" record, as for exec processes.
    if (auto joined = joinNamespaces(config.init_pid, config.join_flags); !joined) {
      die(joined.error());
    }
    long pid = ::syscall(SYS_clone, CLONE_PARENT | SIGCHLD | config.clone_flags, 0, 0, 0, 0);
    if (pid < 0) {
      die(Error::lastErrno("clone pod container"));
    }
    if (pid > 0) {
      sendRecord("P" + std::to_string(pid));
      _exit(0);
    }
  }
  if (auto ok = setupRootfs(*spec, config); !ok) {
    die(ok.error());
  }
  if (config.tty) {
    if (auto ok = setupTerminal(spec->process.console_rows, spec->process.console_columns); !ok) {
      die(ok.error());
    }
  }
  auto binary = applyProcess(spec->process, config.tty);
  if (!binary) {
    die(binary.error());
  }
  sendRecord("R");
  char go = 0;
  if (retryOnEintr([&] { return ::read(kSyncFd, &go, 1); }) != 1 || go != 'S') {
    _exit(127);  // the agent went away or removed the container before starting it
  }
  execWorkload(*binary, spec->process, spec->seccomp);
}

[[noreturn]] void runExec(const LaunchConfig& config) {
  auto process = parseProcess(config.spec_json);
  if (!process) {
    die(process.error());
  }
  if (auto joined = joinContainer(config); !joined) {
    die(joined.error());
  }
  // CLONE_PARENT makes the workload the agent's child (so the agent reaps it) and, after
  // setns(pid), a member of the container's pid namespace.
  long pid = ::syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, 0, 0, 0);
  if (pid < 0) {
    die(Error::lastErrno("clone exec process"));
  }
  if (pid > 0) {
    sendRecord("P" + std::to_string(pid));
    _exit(0);
  }
  if (config.tty) {
    if (auto ok = setupTerminal(process->console_rows, process->console_columns); !ok) {
      die(ok.error());
    }
  }
  auto binary = applyProcess(*process, config.tty);
  if (!binary) {
    die(binary.error());
  }
  // An exec'd process gets the container's seccomp profile, as with runc.
  std::optional<SeccompSpec> seccomp;
  if (!config.container_spec_json.empty()) {
    auto spec = parseSpec(config.container_spec_json);
    if (!spec) {
      die(spec.error());
    }
    seccomp = spec->seccomp;
  }
  execWorkload(*binary, *process, seccomp);
}

}  // namespace

int runChild() {
  // Undo what the agent set for itself: blocked signals and ignored SIGPIPE are inherited.
  sigset_t all;
  sigemptyset(&all);
  sigprocmask(SIG_SETMASK, &all, nullptr);
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) {
      ::signal(sig, SIG_DFL);
    }
  }
  ::fcntl(kConfigFd, F_SETFD, FD_CLOEXEC);
  ::fcntl(kSyncFd, F_SETFD, FD_CLOEXEC);
  auto text = readAll(kConfigFd);
  ::close(kConfigFd);
  if (!text) {
    die(text.error());
  }
  auto config = parseLaunchConfig(*text);
  if (!config) {
    die(config.error());
  }
  if (config->kind == LaunchConfig::Kind::kContainer) {
    runContainer(*config);
  }
  runExec(*config);
}

Result<std::string> secureJoin(const std::string& root, const std::string& path) {
  if (!isCleanAbsolutePath(path)) {
    return fail(Errc::kInvalidArgument, "path \"" + path + "\" is not a clean absolute path");
  }
  std::vector<std::string> pending;  // components still to walk, last first
  auto push = [&](std::string_view p) {
    std::vector<std::string> parts;
    size_t pos = 0;
    while (pos <= p.size()) {
      size_t next = p.find('/', pos);
      if (next == std::string_view::npos) {
        next = p.size();
      }
      if (next > pos) {
        parts.emplace_back(p.substr(pos, next - pos));
      }
      pos = next + 1;
    }
    pending.insert(pending.end(), parts.rbegin(), parts.rend());
  };
  push(path);
  std::vector<std::string> resolved;
  int links = 0;
  while (!pending.empty()) {
    std::string part = std::move(pending.back());
    pending.pop_back();
    if (part == ".") {
      continue;
    }
    if (part == "..") {
      if (!resolved.empty()) {
        resolved.pop_back();
      }
      continue;
    }
    std::string current = root;
    for (const auto& r : resolved) {
      current += "/" + r;
    }
    current += "/" + part;
    char target[4096];
    ssize_t n = ::readlink(current.c_str(), target, sizeof(target) - 1);
    if (n < 0) {
      resolved.push_back(part);  // not a symlink (or missing): take it as is
      continue;
    }
    if (++links > 40) {
      return fail(Errc::kInvalidArgument, "too many symlinks in " + path);
    }
    std::string_view link(target, static_cast<size_t>(n));
    if (!link.empty() && link.front() == '/') {
      resolved.clear();
    }
    push(link);
  }
  std::string out = root;
  for (const auto& r : resolved) {
    out += "/" + r;
  }
  return out;
}

Result<std::string> lookupExecutable(const std::string& file, const std::string& path_env) {
  if (file.find('/') != std::string::npos) {
    return file;
  }
  size_t pos = 0;
  while (pos <= path_env.size()) {
    size_t next = path_env.find(':', pos);
    if (next == std::string::npos) {
      next = path_env.size();
    }
    std::string dir = path_env.substr(pos, next - pos);
    if (dir.empty()) {
      dir = ".";
    }
    std::string candidate = dir + "/" + file;
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
    pos = next + 1;
  }
  return fail(Errc::kNotFound, "exec " + file + ": executable file not found in $PATH");
}

}  // namespace nv::agent
