// SPDX-License-Identifier: Apache-2.0
// Layer disks + writable layer -> overlayfs rootfs.
#include "agent/rootfs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "agent/oci_spec.h"
#include "agent/passwd.h"
#include "common/unique_fd.h"

namespace nv::agent {
namespace {

Result<void> makeDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) < 0 && errno != EEXIST) {
    return failErrno("mkdir " + path);
  }
  return {};
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\0')) {
    s.pop_back();
  }
  return s;
}

Result<std::string> checkFstype(const std::string& fstype) {
  if (fstype.empty()) {
    return std::string("ext4");
  }
  if (fstype != "erofs" && fstype != "ext4" && fstype != "ext2" && fstype != "squashfs") {
    return fail(Errc::kInvalidArgument, "unsupported filesystem type " + fstype);
  }
  return fstype;
}

// Mounts a device (or takes a directory in host mode) at `target`; records the mount.
Result<std::string> mountDevice(const pb::BlockDevice& device, const std::string& target,
                                bool readonly, bool allow_directories, PreparedRootfs& out) {
  NV_ASSIGN_OR_RETURN(std::string source, resolveBlockDevice(device, allow_directories));
  struct stat st {};
  if (::stat(source.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    return source;
  }
  NV_ASSIGN_OR_RETURN(std::string fstype, checkFstype(device.fstype()));
  NV_TRY(makeDir(target));
  if (S_ISBLK(st.st_mode)) {
    // A pod's disk slot had other media (the empty slot read at boot, an earlier container's
    // image): drop the device's cached pages so the filesystem reads the new media.
    UniqueFd fd(::open(source.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd || ::ioctl(fd.get(), BLKFLSBUF, 0) < 0) return failErrno("flush " + source);
  }
  unsigned long flags = MS_NODEV | (readonly ? static_cast<unsigned long>(MS_RDONLY) : 0UL);
  if (::mount(source.c_str(), target.c_str(), fstype.c_str(), flags, nullptr) < 0) {
    return failErrno("mount " + source + " (" + fstype + ")");
  }
  out.mounts.push_back(target);
  return target;
}

// Mounts the virtio-9p share `tag` at `target` (9P2000.L; cache=none: every access goes to
// the host, so its changes are seen at once); records the mount.
Result<std::string> mountShare(const std::string& tag, const std::string& target, bool readonly,
                               PreparedRootfs& out) {
  const bool tag_ok =
      !tag.empty() && tag.size() <= 31 &&
      std::all_of(tag.begin(), tag.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '-';
      });
  if (!tag_ok) {
    return fail(Errc::kInvalidArgument, "share tag \"" + tag + "\" is not 1-31 of [A-Za-z0-9_-]");
  }
  NV_TRY(makeDir(target));
  const unsigned long flags =
      MS_NODEV | MS_NOSUID | (readonly ? static_cast<unsigned long>(MS_RDONLY) : 0UL);
  // msize: the most the 6.1 virtio transport takes (PAGE_SIZE * 125).
  if (::mount(tag.c_str(), target.c_str(), "9p", flags,
              "trans=virtio,version=9p2000.L,msize=512000,cache=none") < 0) {
    return failErrno("mount 9p share " + tag);
  }
  out.mounts.push_back(target);
  return target;
}

}  // namespace

Result<std::string> resolveBlockDevice(const pb::BlockDevice& device, bool allow_directories,
                                       const std::string& sys_block) {
  if (!device.serial().empty()) {
    DIR* dir = ::opendir(sys_block.c_str());
    if (dir == nullptr) {
      return failErrno("opendir " + sys_block);
    }
    std::string found;
    while (dirent* entry = ::readdir(dir)) {
      std::string name = entry->d_name;
      if (name.front() == '.') {
        continue;
      }
      if (trim(readSmallFile(sys_block + "/" + name + "/serial", 256)) == device.serial()) {
        found = "/dev/" + name;
        break;
      }
    }
    ::closedir(dir);
    if (found.empty()) {
      return fail(Errc::kNotFound, "no disk with serial \"" + device.serial() + "\"");
    }
    return found;
  }
  if (!device.path().empty()) {
    const std::string& path = device.path();
    struct stat st {};
    if (::stat(path.c_str(), &st) < 0) {
      return failErrno("disk " + path);
    }
    if (S_ISBLK(st.st_mode) || (allow_directories && S_ISDIR(st.st_mode))) {
      return path;
    }
    return fail(Errc::kInvalidArgument, path + " is not a block device");
  }
  if (device.index() < 0 || device.index() > 25) {
    return fail(Errc::kInvalidArgument, "disk index " + std::to_string(device.index()) +
                                            " out of range 0..25");
  }
  return std::string("/dev/vd") + static_cast<char>('a' + device.index());
}

Result<PreparedRootfs> prepareRootfs(
    const std::string& state_dir, const pb::Rootfs& rootfs,
    const google::protobuf::RepeatedPtrField<pb::VolumeMount>& volumes, bool allow_directories) {
  if (rootfs.layers().empty()) {
    return fail(Errc::kInvalidArgument, "rootfs: no layers");
  }
  if (rootfs.layers().size() > 64) {
    return fail(Errc::kInvalidArgument, "rootfs: more than 64 layers");
  }
  PreparedRootfs out;
  auto undo = [&](const Error& e) {
    teardownRootfs(out);
    return Unexpected(e);
  };
  std::vector<std::string> lowers;
  for (int i = 0; i < rootfs.layers().size(); ++i) {
    auto lower = mountDevice(rootfs.layers(i), state_dir + "/layer" + std::to_string(i), true,
                             allow_directories, out);
    if (!lower) {
      return undo(lower.error().wrap("rootfs layer " + std::to_string(i)));
    }
    lowers.push_back(*lower);
  }
  std::string rw = state_dir + "/rw";
  if (auto made = makeDir(rw); !made) {
    return undo(made.error());
  }
  const auto& writable = rootfs.writable();
  if (writable.has_scratch()) {
    auto mounted = mountDevice(writable.scratch(), rw, false, allow_directories, out);
    if (!mounted) {
      return undo(mounted.error().wrap("writable layer"));
    }
    rw = *mounted;
  } else {
    std::string options = "mode=0755";
    if (writable.tmpfs_size_bytes() > 0) {
      options += ",size=" + std::to_string(writable.tmpfs_size_bytes());
    }
    if (::mount("tmpfs", rw.c_str(), "tmpfs", MS_NODEV, options.c_str()) < 0) {
      return undo(Error::lastErrno("mount writable tmpfs"));
    }
    out.mounts.push_back(rw);
  }
  for (const char* sub : {"/upper", "/work"}) {
    if (auto made = makeDir(rw + sub); !made) {
      return undo(made.error());
    }
  }
  out.rootfs = state_dir + "/rootfs";
  if (auto made = makeDir(out.rootfs); !made) {
    return undo(made.error());
  }
  // overlayfs lists the topmost lower layer first; ours come lowest first.
  std::string lowerdir;
  for (auto it = lowers.rbegin(); it != lowers.rend(); ++it) {
    if (it->find_first_of(":,") != std::string::npos) {
      return undo(Error(Errc::kInvalidArgument, "layer path " + *it + " contains ':' or ','"));
    }
    lowerdir += (lowerdir.empty() ? "" : ":") + *it;
  }
  std::string options =
      "lowerdir=" + lowerdir + ",upperdir=" + rw + "/upper,workdir=" + rw + "/work";
  if (::mount("overlay", out.rootfs.c_str(), "overlay", 0, options.c_str()) < 0) {
    return undo(Error::lastErrno("mount overlay rootfs"));
  }
  out.mounts.push_back(out.rootfs);
  for (int i = 0; i < volumes.size(); ++i) {
    const auto& volume = volumes.Get(i);
    if (!isCleanAbsolutePath(volume.destination())) {
      return undo(Error(Errc::kInvalidArgument,
                        "volume destination \"" + volume.destination() + "\" is not absolute"));
    }
    const std::string target = state_dir + "/volume" + std::to_string(i);
    auto mounted = volume.share_tag().empty()
                       ? mountDevice(volume.device(), target,
                                     volume.readonly() || volume.device().readonly(),
                                     allow_directories, out)
                       : mountShare(volume.share_tag(), target, volume.readonly(), out);
    if (!mounted) {
      return undo(mounted.error().wrap("volume " + volume.destination()));
    }
    out.volumes.push_back(VolumeBind{*mounted, volume.destination(), volume.readonly()});
  }
  return out;
}

void teardownRootfs(const PreparedRootfs& prepared) {
  for (auto it = prepared.mounts.rbegin(); it != prepared.mounts.rend(); ++it) {
    ::umount2(it->c_str(), MNT_DETACH);
  }
}

}  // namespace nv::agent
