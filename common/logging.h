// SPDX-License-Identifier: Apache-2.0
// Logging: one named spdlog logger per component, level from --log-level or NANOVISOR_LOG.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

#include "common/result.h"

namespace nv::log {

// Parses "trace|debug|info|warn|error|critical|off".
[[nodiscard]] Result<spdlog::level::level_enum> parseLevel(std::string_view name);

// Sets up logging for a binary: logs to stderr, level from `level_flag` when set, else from
// $NANOVISOR_LOG, else `fallback`. Returns an error for an unknown level name.
[[nodiscard]] Result<void> init(std::string_view program, std::string_view level_flag,
                                spdlog::level::level_enum fallback = spdlog::level::warn);

// The logger of a component ("vmm", "agent", "ttrpc", ...), created on first use with the
// process-wide level and sink.
std::shared_ptr<spdlog::logger> get(const std::string& component);

// Lets at most one message per `interval` through; counts the ones it drops. For log lines a
// guest or remote peer can trigger at will. Thread-safe.
class RateLimit {
 public:
  explicit RateLimit(std::chrono::milliseconds interval = std::chrono::seconds(1))
      : interval_(interval) {}
  // True when a message may be logged now; `suppressed` gets the count dropped since the last.
  bool allow(uint64_t* suppressed);

 private:
  std::chrono::milliseconds interval_;
  std::atomic<int64_t> next_ns_{0};
  std::atomic<uint64_t> dropped_{0};
};

}  // namespace nv::log

// Logs through `logger` at most once per second per call site.
#define NV_LOG_RATE_LIMITED(logger, level, ...)                            \
  do {                                                                     \
    static ::nv::log::RateLimit nv_rate_limit;                             \
    uint64_t nv_suppressed = 0;                                            \
    if (nv_rate_limit.allow(&nv_suppressed)) {                             \
      if (nv_suppressed > 0) {                                             \
        (logger)->log(level, "({} similar messages suppressed)", nv_suppressed); \
      }                                                                    \
      (logger)->log(level, __VA_ARGS__);                                   \
    }                                                                      \
  } while (false)
