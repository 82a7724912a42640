// SPDX-License-Identifier: Apache-2.0
// PID 1 setup of the guest and the host channel.
#include "agent/boot.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "agent/cgroup.h"
#include "agent/passwd.h"
#include "common/logging.h"

namespace nv::agent {
namespace {

struct EarlyMount {
  const char* source;
  const char* target;
  const char* type;
  unsigned long flags;
  const char* data;
  bool required;
};

}  // namespace

Result<void> switchToTmpfsRoot() {
  struct statfs fs {};
  constexpr unsigned long kRamfsMagic = 0x858458f6;
  constexpr unsigned long kTmpfsMagic = 0x01021994;
  if (::statfs("/", &fs) < 0) {
    return failErrno("statfs /");
  }
  auto type = static_cast<unsigned long>(fs.f_type);
  if (type != kRamfsMagic && type != kTmpfsMagic) {
    return {};
  }
  const char* stage = "/.nvroot";
  ::mkdir(stage, 0755);
  if (::mount("tmpfs", stage, "tmpfs", 0, "mode=0755") < 0) {
    return failErrno("mount tmpfs root");
  }
  for (const char* dir : {"/.nvroot/dev", "/.nvroot/proc", "/.nvroot/sys", "/.nvroot/run",
                          "/.nvroot/tmp", "/.nvroot/etc"}) {
    ::mkdir(dir, 0755);
  }
  // No copy and no re-exec: the running binary stays on the (now hidden) initramfs, and
  // children re-exec it through /proc/self/exe, which does not need a visible path.
  if (::chdir(stage) < 0 || ::mount(".", "/", nullptr, MS_MOVE, nullptr) < 0 ||
      ::chroot(".") < 0 || ::chdir("/") < 0) {
    return failErrno("switch to tmpfs root");
  }
  return {};
}

Result<void> mountEarlyFilesystems() {
  const EarlyMount mounts[] = {
      {"proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr, true},
      {"sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr, true},
      {"devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755", true},
      {"devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "ptmxmode=0666,mode=0620", false},
      {"cgroup2", "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr, false},
      {"tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755", true},
      {"tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777", false},
      {"tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777", false},
  };
  for (const auto& m : mounts) {
    ::mkdir(m.target, 0755);
    if (::mount(m.source, m.target, m.type, m.flags, m.data) < 0 && errno != EBUSY) {
      if (m.required) {
        return failErrno(std::string("mount ") + m.target);
      }
      logToKmsg(std::string("mount ") + m.target + ": " + std::strerror(errno));
    }
  }
  // Keep 0, 1, 2 open so pipes never land there.
  for (int fd = 0; fd < 3; ++fd) {
    if (::fcntl(fd, F_GETFD) < 0) {
      int opened = ::open("/dev/console", O_RDWR);
      if (opened < 0) {
        opened = ::open("/dev/null", O_RDWR);
      }
      if (opened >= 0 && opened != fd) {
        ::dup2(opened, fd);
        ::close(opened);
      }
    }
  }
  if (auto enabled = Cgroups::enableControllers("/sys/fs/cgroup"); !enabled) {
    logToKmsg("cgroup controllers: " + enabled.error().message());
  }
  return {};
}

BootOptions readBootOptions() { return parseBootOptions(readSmallFile("/proc/cmdline", 4096)); }

Result<std::string> findSerialPort(const std::string& name, int timeout_ms,
                                   const std::string& sys_dir) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    if (DIR* dir = ::opendir(sys_dir.c_str())) {
      std::string found;
      while (dirent* entry = ::readdir(dir)) {
        std::string port = entry->d_name;
        if (port.front() == '.') {
          continue;
        }
        std::string port_name = readSmallFile(sys_dir + "/" + port + "/name", 256);
        while (!port_name.empty() && port_name.back() == '\n') {
          port_name.pop_back();
        }
        if (port_name == name) {
          found = "/dev/" + port;
          break;
        }
      }
      ::closedir(dir);
      if (!found.empty()) {
        return found;
      }
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return fail(Errc::kNotFound, "no virtio-serial port named " + name);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

Result<UniqueFd> listenVsock(unsigned port) {
  UniqueFd fd(::socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) {
    return failErrno("socket AF_VSOCK");
  }
  sockaddr_vm addr {};
  addr.svm_family = AF_VSOCK;
  addr.svm_port = port;
  addr.svm_cid = VMADDR_CID_ANY;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) < 0) {
    return failErrno("bind vsock port " + std::to_string(port));
  }
  if (::listen(fd.get(), 16) < 0) {
    return failErrno("listen vsock");
  }
  return fd;
}

Result<UniqueFd> listenUnix(const std::string& path) {
  sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return fail(Errc::kInvalidArgument, "socket path too long: " + path);
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) {
    return failErrno("socket");
  }
  ::unlink(path.c_str());
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) < 0) {
    return failErrno("bind " + path);
  }
  if (::listen(fd.get(), 16) < 0) {
    return failErrno("listen " + path);
  }
  return fd;
}

void logToKmsg(const std::string& message) {
  int fd = ::open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    fd = ::open("/dev/console", O_WRONLY | O_CLOEXEC | O_NOCTTY);
  }
  if (fd < 0) {
    return;
  }
  std::string line = "nanovisor-agent: " + message + "\n";
  (void)!::write(fd, line.data(), line.size());
  ::close(fd);
}

void fatalReboot(const std::string& message) {
  logToKmsg("fatal: " + message);
  ::sync();
  ::reboot(RB_AUTOBOOT);
  while (true) {
    ::pause();
  }
}

}  // namespace nv::agent
