// SPDX-License-Identifier: Apache-2.0
#include "common/result.h"

namespace nv {
namespace {

class NvCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "nanovisor"; }
  std::string message(int value) const override {
    switch (static_cast<Errc>(value)) {
      case Errc::kOk: return "ok";
      case Errc::kInvalidArgument: return "invalid argument";
      case Errc::kNotFound: return "not found";
      case Errc::kAlreadyExists: return "already exists";
      case Errc::kProtocol: return "protocol error";
      case Errc::kTooLarge: return "too large";
      case Errc::kTimeout: return "timed out";
      case Errc::kUnavailable: return "unavailable";
      case Errc::kIntegrity: return "integrity check failed";
      case Errc::kPermission: return "refused by policy";
      case Errc::kUnsupported: return "not supported";
      case Errc::kInternal: return "internal error";
      case Errc::kCancelled: return "cancelled";
    }
    return "unknown error";
  }
};

}  // namespace

const std::error_category& nvCategory() noexcept {
  static const NvCategory category;
  return category;
}

std::string Error::message() const {
  // nanovisor's own codes read better without the generic reason when context says it all.
  if (code_.category() == nvCategory()) {
    return context_;
  }
  return context_ + ": " + code_.message();
}

}  // namespace nv
