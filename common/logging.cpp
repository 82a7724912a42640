// SPDX-License-Identifier: Apache-2.0
#include "common/logging.h"

#include <atomic>
#include <cstdlib>
#include <mutex>

#include <spdlog/sinks/stdout_color_sinks.h>

namespace nv::log {
namespace {

std::mutex g_mutex;
spdlog::level::level_enum g_level = spdlog::level::warn;
std::string g_program = "nanovisor";

}  // namespace

Result<spdlog::level::level_enum> parseLevel(std::string_view name) {
  static constexpr std::pair<std::string_view, spdlog::level::level_enum> kLevels[] = {
      {"trace", spdlog::level::trace}, {"debug", spdlog::level::debug},
      {"info", spdlog::level::info},   {"warn", spdlog::level::warn},
      {"warning", spdlog::level::warn}, {"error", spdlog::level::err},
      {"critical", spdlog::level::critical}, {"off", spdlog::level::off},
  };
  for (const auto& [level_name, level] : kLevels) {
    if (level_name == name) {
      return level;
    }
  }
  return fail(Errc::kInvalidArgument, "unknown log level '" + std::string(name) +
                                          "' (use trace, debug, info, warn, error or off)");
}

Result<void> init(std::string_view program, std::string_view level_flag,
                  spdlog::level::level_enum fallback) {
  spdlog::level::level_enum level = fallback;
  if (!level_flag.empty()) {
    NV_ASSIGN_OR_RETURN(level, parseLevel(level_flag));
  } else if (const char* env = std::getenv("NANOVISOR_LOG"); env != nullptr && *env != '\0') {
    NV_ASSIGN_OR_RETURN(level, parseLevel(env));
  }
  std::lock_guard lock(g_mutex);
  g_level = level;
  g_program = std::string(program);
  spdlog::set_level(level);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ " + g_program + "[%P] %n: %v",
                      spdlog::pattern_time_type::utc);
  spdlog::apply_all([level](const std::shared_ptr<spdlog::logger>& l) { l->set_level(level); });
  return {};
}

std::shared_ptr<spdlog::logger> get(const std::string& component) {
  std::lock_guard lock(g_mutex);
  if (auto existing = spdlog::get(component)) {
    return existing;
  }
  auto logger = spdlog::stderr_color_mt(component);
  logger->set_level(g_level);
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ " + g_program + "[%P] %n: %v",
                      spdlog::pattern_time_type::utc);
  return logger;
}

bool RateLimit::allow(uint64_t* suppressed) {
  const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count();
  int64_t next = next_ns_.load(std::memory_order_relaxed);
  if (now < next ||
      !next_ns_.compare_exchange_strong(
          next, now + std::chrono::duration_cast<std::chrono::nanoseconds>(interval_).count())) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  *suppressed = dropped_.exchange(0, std::memory_order_relaxed);
  return true;
}

}  // namespace nv::log
