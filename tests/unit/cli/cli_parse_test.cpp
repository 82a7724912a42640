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

TEST(ParseVolume, ReadOnlyHostDirAndAbsoluteTarget) {
  auto v = parseVolume("/tmp:/data:ro");
  ASSERT_TRUE(v) << v.error().message();
  EXPECT_EQ(v->host_dir, "/tmp");
  EXPECT_EQ(v->destination, "/data");
}

TEST(ParseVolume, WritableOrMalformed_IsRefusedWithTheReason) {
  EXPECT_NE(parseVolume("/tmp:/data").error().message().find("add :ro"), std::string::npos);
  EXPECT_NE(parseVolume("/tmp:/data:rw").error().message().find("add :ro"), std::string::npos);
  EXPECT_NE(parseVolume("/no/such/dir:/data:ro").error().message().find("not a directory"),
            std::string::npos);
  for (const char* bad : {"/tmp", ":/data:ro", "/tmp::ro", "/tmp:/data:ro:x"}) {
    EXPECT_NE(parseVolume(bad).error().message().find("not HOSTDIR:CTRDIR:ro"),
              std::string::npos)
        << bad;
  }
  for (const char* bad : {"/tmp:data:ro", "/tmp:/:ro", "/tmp:/a/../b:ro", "/tmp:/a//b:ro"}) {
    EXPECT_NE(parseVolume(bad).error().message().find("clean absolute path"), std::string::npos)
        << bad;
  }
}

}  // namespace
}  // namespace nv::cli
