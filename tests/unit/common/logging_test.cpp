// SPDX-License-Identifier: Apache-2.0
#include "common/logging.h"

#include <gtest/gtest.h>

namespace nv {
namespace {

TEST(Logging, ParseLevel_KnownNames) {
  EXPECT_EQ(log::parseLevel("debug").value(), spdlog::level::debug);
  EXPECT_EQ(log::parseLevel("error").value(), spdlog::level::err);
  EXPECT_EQ(log::parseLevel("off").value(), spdlog::level::off);
}

TEST(Logging, ParseLevel_UnknownName_SaysWhichAndWhatIsValid) {
  auto level = log::parseLevel("loud");
  ASSERT_FALSE(level);
  EXPECT_NE(level.error().message().find("'loud'"), std::string::npos);
  EXPECT_NE(level.error().message().find("debug"), std::string::npos);
}

TEST(Logging, Init_FlagBeatsEnvironment) {
  ::setenv("NANOVISOR_LOG", "error", 1);
  ASSERT_TRUE(log::init("test", "debug"));
  EXPECT_EQ(log::get("unit")->level(), spdlog::level::debug);
  ASSERT_TRUE(log::init("test", ""));
  EXPECT_EQ(log::get("unit")->level(), spdlog::level::err);
  ::unsetenv("NANOVISOR_LOG");
}

TEST(Logging, Init_BadEnvironmentLevel_IsAnError) {
  ::setenv("NANOVISOR_LOG", "chatty", 1);
  EXPECT_FALSE(log::init("test", ""));
  ::unsetenv("NANOVISOR_LOG");
}

TEST(Logging, RateLimit_SecondCallWithinInterval_IsSuppressedAndCounted) {
  log::RateLimit limit(std::chrono::hours(1));
  uint64_t suppressed = 99;
  EXPECT_TRUE(limit.allow(&suppressed));
  EXPECT_EQ(suppressed, 0u);
  EXPECT_FALSE(limit.allow(&suppressed));
  EXPECT_FALSE(limit.allow(&suppressed));
}

}  // namespace
}  // namespace nv
