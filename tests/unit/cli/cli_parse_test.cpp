// SPDX-License-Identifier: Apache-2.0
#include <signal.h>

#include <gtest/gtest.h>

#include "cli/commands.h"
#include "common/size.h"

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

TEST(ParseVolume, ReadOnlySuffix_IsAReadOnlyVolume) {
  auto v = parseVolume("/tmp:/data:ro");
  ASSERT_TRUE(v) << v.error().message();
  EXPECT_EQ(v->host_dir, "/tmp");
  EXPECT_EQ(v->destination, "/data");
  EXPECT_TRUE(v->read_only);
}

TEST(ParseVolume, NoSuffix_IsWritableLikeDocker) {
  auto v = parseVolume("/tmp:/data");
  ASSERT_TRUE(v) << v.error().message();
  EXPECT_EQ(v->host_dir, "/tmp");
  EXPECT_EQ(v->destination, "/data");
  EXPECT_FALSE(v->read_only);
}

TEST(ParseVolume, RwSuffix_IsWritable) {
  auto v = parseVolume("/tmp:/data:rw");
  ASSERT_TRUE(v) << v.error().message();
  EXPECT_FALSE(v->read_only);
}

TEST(ParseVolume, UnknownMode_IsRefusedNamingIt) {
  auto v = parseVolume("/tmp:/data:z");
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().message(), "volume '/tmp:/data:z': unknown mode 'z' (only ro or rw)");
}

TEST(ParseVolume, MissingHostDir_IsRefused) {
  auto v = parseVolume("/no/such/dir:/data:ro");
  ASSERT_FALSE(v);
  EXPECT_NE(v.error().message().find("not a directory"), std::string::npos);
}

TEST(ParseVolume, Malformed_IsRefusedWithTheForm) {
  for (const char* bad : {"/tmp", ":/data:ro", "/tmp::ro", "/tmp:/data:ro:x"}) {
    auto v = parseVolume(bad);
    ASSERT_FALSE(v) << bad;
    EXPECT_NE(v.error().message().find("not HOSTDIR:CTRDIR[:ro|:rw]"), std::string::npos) << bad;
  }
}

TEST(ParseVolume, UncleanTarget_IsRefused) {
  for (const char* bad : {"/tmp:data", "/tmp:/:ro", "/tmp:/a/../b:ro", "/tmp:/a//b"}) {
    auto v = parseVolume(bad);
    ASSERT_FALSE(v) << bad;
    EXPECT_NE(v.error().message().find("clean absolute path"), std::string::npos) << bad;
  }
}

}  // namespace
}  // namespace nv::cli
