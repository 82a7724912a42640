// SPDX-License-Identifier: Apache-2.0
// ttrpc status codes (gRPC numbering) and their mapping to nv::Error.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/result.h"

namespace nv::ttrpc {

// gRPC status codes as carried in ttrpc.Response.status.code.
enum class StatusCode : int32_t {
  kOk = 0,
  kCancelled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kAlreadyExists = 6,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kAborted = 10,
  kOutOfRange = 11,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kDataLoss = 15,
  kUnauthenticated = 16,
};

// What a server handler answers instead of a payload.
struct Status {
  StatusCode code = StatusCode::kOk;
  std::string message;
};

// The client-side error for a non-OK status: NOT_FOUND -> kNotFound, INVALID_ARGUMENT ->
// kInvalidArgument, UNIMPLEMENTED -> kUnsupported, DEADLINE_EXCEEDED -> kTimeout, UNAVAILABLE ->
// kUnavailable, PERMISSION_DENIED -> kPermission, ALREADY_EXISTS -> kAlreadyExists, CANCELLED ->
// kCancelled, anything else -> kInternal. The message is the server's message; the raw code is
// kept and read back with statusCode().
[[nodiscard]] Error statusToError(int32_t code, const std::string& message);

// The gRPC code an error came with (from statusToError), or nullopt for other errors.
[[nodiscard]] std::optional<int32_t> statusCode(const Error& error);

// The status a server should send for an nv::Error (inverse of the mapping above; kTimeout ->
// DEADLINE_EXCEEDED, kProtocol/kTooLarge -> INVALID_ARGUMENT/RESOURCE_EXHAUSTED, others
// INTERNAL). An error from statusToError keeps its code (so a proxy passes it on unchanged);
// errno errors map ENOENT -> NOT_FOUND, EBUSY/ESRCH/EPIPE -> FAILED_PRECONDITION, EPERM/EACCES
// -> PERMISSION_DENIED, EINVAL -> INVALID_ARGUMENT, ENOMEM/ENOSPC -> RESOURCE_EXHAUSTED.
// A handler may use this to answer with a Result's error.
[[nodiscard]] Status errorToStatus(const Error& error);

}  // namespace nv::ttrpc
