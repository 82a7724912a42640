// SPDX-License-Identifier: Apache-2.0
// Result<T> and Error: expected failures are values (tl::expected), propagated with NV_TRY.
#pragma once

#include <cerrno>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include <tl/expected.hpp>

namespace nv {

// Error codes of nanovisor's own (not errno). Keep the list short: the context string says
// what failed, the code says how a caller may react.
enum class Errc {
  kOk = 0,
  kInvalidArgument,   // bad input from a user, config file or request
  kNotFound,          // a named thing does not exist
  kAlreadyExists,
  kProtocol,          // a peer broke a wire protocol (ttrpc frame, QMP, agent)
  kTooLarge,          // a size limit was hit
  kTimeout,           // a deadline passed
  kUnavailable,       // a service or device is not reachable now
  kIntegrity,         // a digest, signature or checksum did not match
  kPermission,        // a policy refused it
  kUnsupported,       // this host or build cannot do it
  kInternal,          // an invariant broke; a bug
  kCancelled,
};

const std::error_category& nvCategory() noexcept;

inline std::error_code makeErrorCode(Errc e) noexcept {
  return {static_cast<int>(e), nvCategory()};
}

// An error: a code plus a short, human-actionable context ("open /dev/kvm").
class Error {
 public:
  Error(std::error_code code, std::string context) : code_(code), context_(std::move(context)) {}
  Error(Errc code, std::string context) : code_(makeErrorCode(code)), context_(std::move(context)) {}

  // An errno error; `context` says what was attempted.
  static Error fromErrno(int err, std::string context) {
    return {std::error_code(err, std::system_category()), std::move(context)};
  }
  static Error lastErrno(std::string context) { return fromErrno(errno, std::move(context)); }

  [[nodiscard]] std::error_code code() const noexcept { return code_; }
  [[nodiscard]] const std::string& context() const noexcept { return context_; }
  [[nodiscard]] bool is(Errc e) const noexcept { return code_ == makeErrorCode(e); }
  [[nodiscard]] bool isErrno(int err) const noexcept {
    return code_ == std::error_code(err, std::system_category());
  }

  // "context: reason", one line, for users and logs.
  [[nodiscard]] std::string message() const;

  // Prefixes more context: "loading kernel: open /x: No such file or directory".
  [[nodiscard]] Error wrap(std::string_view outer) const {
    return {code_, std::string(outer) + ": " + context_};
  }

 private:
  std::error_code code_;
  std::string context_;
};

template <class T, class E = Error>
using Result = tl::expected<T, E>;

using Unexpected = tl::unexpected<Error>;

inline Unexpected fail(Errc code, std::string context) {
  return Unexpected(Error(code, std::move(context)));
}
inline Unexpected failErrno(std::string context) {
  return Unexpected(Error::lastErrno(std::move(context)));
}
inline Unexpected failErrno(int err, std::string context) {
  return Unexpected(Error::fromErrno(err, std::move(context)));
}

}  // namespace nv

#define NV_CONCAT_INNER(a, b) a##b
#define NV_CONCAT(a, b) NV_CONCAT_INNER(a, b)

// Returns the error of a Result<T> expression from the enclosing function.
#define NV_TRY(expr)                                              \
  do {                                                            \
    auto&& nv_try_result = (expr);                                \
    if (!nv_try_result) {                                         \
      return ::tl::unexpected(std::move(nv_try_result).error());  \
    }                                                             \
  } while (false)

// Declares/assigns `lhs` from a Result<T> expression or returns its error.
#define NV_ASSIGN_OR_RETURN(lhs, expr) \
  NV_ASSIGN_OR_RETURN_IMPL(NV_CONCAT(nv_result_, __LINE__), lhs, expr)
#define NV_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr)       \
  auto tmp = (expr);                                   \
  if (!tmp) {                                          \
    return ::tl::unexpected(std::move(tmp).error());   \
  }                                                    \
  lhs = std::move(*tmp)
