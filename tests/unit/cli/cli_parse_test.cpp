// SPDX-License-Identifier: Apache-2.0
#include <signal.h>

#include <gtest/gtest.h>

#include "cli/commands.h"
#include "cli/size.h"

namespace nv::cli {
namespace {

TEST(ParseSize, Suffixes_ArePowersOf1024) {
  EXPECT_EQ(parseSize("64m").value(), 64ull << 20);
  EXPECT_EQ(parseSize("1G").value(), 1ull << 30);
  EXPECT_EQ(parseSize("512k").value(), 512ull << 10);
  EXPECT_EQ(parseSize("4096").value(), 4096u);
  EXPECT_EQ(parseSize("10b").value(), 10u);
}

TEST(ParseSize, Garbage_IsNamedInTheError) {
  for (const char* bad : {"", "m", "12x", "-1m", "1.5g", "99999999999999999999g"}) {
    auto r = parseSize(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_NE(r.error().message().find("invalid size"), std::string::npos);
  }
}

TEST(ParseSignal, NamesWithAndWithoutSigAndNumbers) {
  EXPECT_EQ(parseSignal("KILL").value(), SIGKILL);
  EXPECT_EQ(parseSignal("SIGTERM").value(), SIGTERM);
  EXPECT_EQ(parseSignal("9").value(), 9);
  EXPECT_FALSE(parseSignal("NOPE"));
  EXPECT_FALSE(parseSignal("0"));
  EXPECT_FALSE(parseSignal("65"));
}

}  // namespace
}  // namespace nv::cli
