// SPDX-License-Identifier: Apache-2.0
// QmpClient: a small blocking client for QEMU's machine protocol (JSON lines over a Unix
// socket). Used by the qemu driver for pause/resume and pods' disk slots; not thread-safe.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "common/unique_fd.h"

namespace nv::runtime {

class QmpClient {
 public:
  // Connects (retrying while QEMU creates the socket, up to `timeout`), reads the greeting and
  // negotiates capabilities.
  [[nodiscard]] static Result<QmpClient> connect(const std::filesystem::path& socket,
                                                 std::chrono::milliseconds timeout);

  // Runs one command; returns its "return" value or the QMP error as Errc::kProtocol with
  // QEMU's description. Asynchronous events arriving meanwhile are skipped. `pass_fd` >= 0 is
  // sent along (SCM_RIGHTS), for `add-fd` and `getfd`.
  [[nodiscard]] Result<nlohmann::json> execute(const std::string& command,
                                               const nlohmann::json& arguments = nullptr,
                                               std::chrono::milliseconds timeout =
                                                   std::chrono::seconds(10),
                                               int pass_fd = -1);

 private:
  explicit QmpClient(UniqueFd fd) : fd_(std::move(fd)) {}
  [[nodiscard]] Result<nlohmann::json> readMessage(std::chrono::steady_clock::time_point deadline);

  UniqueFd fd_;
  std::string buffer_;
};

}  // namespace nv::runtime
