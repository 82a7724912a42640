// SPDX-License-Identifier: Apache-2.0
// OCI seccomp profile -> libseccomp filter.
#include "agent/seccomp_filter.h"

#include <seccomp.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

#include "common/unique_fd.h"

namespace nv::agent {
namespace {

struct FilterDeleter {
  void operator()(void* ctx) const { seccomp_release(ctx); }
};
using Filter = std::unique_ptr<void, FilterDeleter>;

Result<uint32_t> action(const std::string& name, std::optional<uint32_t> errno_ret) {
  if (name == "SCMP_ACT_ALLOW") {
    return SCMP_ACT_ALLOW;
  }
  if (name == "SCMP_ACT_ERRNO") {
    return SCMP_ACT_ERRNO(errno_ret.value_or(EPERM));
  }
  if (name == "SCMP_ACT_KILL" || name == "SCMP_ACT_KILL_THREAD") {
    return SCMP_ACT_KILL_THREAD;
  }
  if (name == "SCMP_ACT_KILL_PROCESS") {
    return SCMP_ACT_KILL_PROCESS;
  }
  if (name == "SCMP_ACT_TRAP") {
    return SCMP_ACT_TRAP;
  }
  if (name == "SCMP_ACT_TRACE") {
    return SCMP_ACT_TRACE(errno_ret.value_or(0));
  }
  if (name == "SCMP_ACT_LOG") {
    return SCMP_ACT_LOG;
  }
  return fail(Errc::kInvalidArgument, "seccomp: unsupported action " + name);
}

Result<scmp_compare> compareOp(const std::string& op) {
  if (op == "SCMP_CMP_NE") return SCMP_CMP_NE;
  if (op == "SCMP_CMP_LT") return SCMP_CMP_LT;
  if (op == "SCMP_CMP_LE") return SCMP_CMP_LE;
  if (op == "SCMP_CMP_EQ") return SCMP_CMP_EQ;
  if (op == "SCMP_CMP_GE") return SCMP_CMP_GE;
  if (op == "SCMP_CMP_GT") return SCMP_CMP_GT;
  if (op == "SCMP_CMP_MASKED_EQ") return SCMP_CMP_MASKED_EQ;
  return fail(Errc::kInvalidArgument, "seccomp: unsupported operator " + op);
}

Result<Filter> build(const SeccompSpec& profile) {
  NV_ASSIGN_OR_RETURN(uint32_t default_action,
                      action(profile.default_action, profile.default_errno_ret));
  Filter filter(seccomp_init(default_action));
  if (!filter) {
    return fail(Errc::kInternal, "seccomp_init failed");
  }
  for (const auto& rule : profile.syscalls) {
    NV_ASSIGN_OR_RETURN(uint32_t rule_action, action(rule.action, rule.errno_ret));
    if (rule_action == default_action) {
      continue;  // libseccomp refuses rules equal to the default
    }
    std::vector<scmp_arg_cmp> cmps;
    for (const auto& arg : rule.args) {
      NV_ASSIGN_OR_RETURN(auto op, compareOp(arg.op));
      cmps.push_back({arg.index, op, arg.value, arg.value_two});
    }
    for (const auto& name : rule.names) {
      int nr = seccomp_syscall_resolve_name(name.c_str());
      if (nr == __NR_SCMP_ERROR) {
        continue;
      }
      int rc = seccomp_rule_add_array(filter.get(), rule_action, nr,
                                      static_cast<unsigned>(cmps.size()), cmps.data());
      if (rc < 0) {
        return failErrno(-rc, "seccomp: rule for " + name);
      }
    }
  }
  return filter;
}

}  // namespace

Result<std::vector<uint8_t>> compileSeccomp(const SeccompSpec& profile) {
  NV_ASSIGN_OR_RETURN(auto filter, build(profile));
  UniqueFd fd(memfd_create("nv-seccomp", MFD_CLOEXEC));
  if (!fd) {
    return failErrno("memfd_create");
  }
  int rc = seccomp_export_bpf(filter.get(), fd.get());
  if (rc < 0) {
    return failErrno(-rc, "seccomp_export_bpf");
  }
  off_t size = lseek(fd.get(), 0, SEEK_END);
  if (size < 0) {
    return failErrno("lseek");
  }
  std::vector<uint8_t> out(static_cast<size_t>(size));
  if (pread(fd.get(), out.data(), out.size(), 0) != size) {
    return failErrno("pread seccomp bpf");
  }
  return out;
}

Result<void> loadSeccomp(const SeccompSpec& profile) {
  NV_ASSIGN_OR_RETURN(auto filter, build(profile));
  int rc = seccomp_load(filter.get());
  if (rc < 0) {
    return failErrno(-rc, "seccomp_load");
  }
  return {};
}

}  // namespace nv::agent
