// SPDX-License-Identifier: Apache-2.0
// ttrpc status <-> nv::Error mapping.
#include "common/ttrpc/status.h"

#include <cerrno>

#include <fmt/format.h>

namespace nv::ttrpc {
namespace {

Errc nvErrc(int32_t code) noexcept {
  switch (static_cast<StatusCode>(code)) {
    case StatusCode::kNotFound: return Errc::kNotFound;
    case StatusCode::kInvalidArgument: return Errc::kInvalidArgument;
    case StatusCode::kUnimplemented: return Errc::kUnsupported;
    case StatusCode::kDeadlineExceeded: return Errc::kTimeout;
    case StatusCode::kUnavailable: return Errc::kUnavailable;
    case StatusCode::kPermissionDenied: return Errc::kPermission;
    case StatusCode::kAlreadyExists: return Errc::kAlreadyExists;
    case StatusCode::kCancelled: return Errc::kCancelled;
    default: return Errc::kInternal;
  }
}

}  // namespace

Error statusToError(int32_t code, const std::string& message) {
  // The raw code rides at the end of the one-line context, where statusCode() reads it back.
  return Error(nvErrc(code), fmt::format("{} (ttrpc status {})",
                                         message.empty() ? "remote error" : message, code));
}

std::optional<int32_t> statusCode(const Error& error) {
  // The context ends in "(ttrpc status N)" for errors made by statusToError.
  const std::string& ctx = error.context();
  static constexpr std::string_view kTag = "(ttrpc status ";
  const size_t at = ctx.rfind(kTag);
  if (at == std::string::npos || ctx.empty() || ctx.back() != ')') {
    return std::nullopt;
  }
  const std::string digits = ctx.substr(at + kTag.size(), ctx.size() - 1 - at - kTag.size());
  if (digits.empty() || digits.size() > 10) {
    return std::nullopt;
  }
  int64_t value = 0;
  size_t i = digits[0] == '-' ? 1 : 0;
  if (i == digits.size()) {
    return std::nullopt;
  }
  for (; i < digits.size(); ++i) {
    if (digits[i] < '0' || digits[i] > '9') {
      return std::nullopt;
    }
    value = value * 10 + (digits[i] - '0');
  }
  return static_cast<int32_t>(digits[0] == '-' ? -value : value);
}

Status errorToStatus(const Error& error) {
  // A status that came over the wire goes back out unchanged (e.g. through a proxy).
  if (auto raw = statusCode(error); raw && *raw > 0 && *raw <= 16) {
    std::string message = error.message();
    if (const size_t at = message.rfind(" (ttrpc status "); at != std::string::npos) {
      message.resize(at);
    }
    return Status{static_cast<StatusCode>(*raw), std::move(message)};
  }
  StatusCode code = StatusCode::kInternal;
  if (error.isErrno(ENOENT)) {
    code = StatusCode::kNotFound;
  } else if (error.isErrno(EBUSY) || error.isErrno(ESRCH) || error.isErrno(EPIPE)) {
    code = StatusCode::kFailedPrecondition;
  } else if (error.isErrno(EPERM) || error.isErrno(EACCES)) {
    code = StatusCode::kPermissionDenied;
  } else if (error.isErrno(EINVAL)) {
    code = StatusCode::kInvalidArgument;
  } else if (error.isErrno(ENOMEM) || error.isErrno(ENOSPC)) {
    code = StatusCode::kResourceExhausted;
  } else if (error.is(Errc::kNotFound)) {
    code = StatusCode::kNotFound;
  } else if (error.is(Errc::kInvalidArgument) || error.is(Errc::kProtocol)) {
    code = StatusCode::kInvalidArgument;
  } else if (error.is(Errc::kUnsupported)) {
    code = StatusCode::kUnimplemented;
  } else if (error.is(Errc::kTimeout)) {
    code = StatusCode::kDeadlineExceeded;
  } else if (error.is(Errc::kUnavailable)) {
    code = StatusCode::kUnavailable;
  } else if (error.is(Errc::kPermission)) {
    code = StatusCode::kPermissionDenied;
  } else if (error.is(Errc::kAlreadyExists)) {
    code = StatusCode::kAlreadyExists;
  } else if (error.is(Errc::kTooLarge)) {
    code = StatusCode::kResourceExhausted;
  } else if (error.is(Errc::kCancelled)) {
    code = StatusCode::kCancelled;
  }
  return Status{code, error.message()};
}

}  // namespace nv::ttrpc
