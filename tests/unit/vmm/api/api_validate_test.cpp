// SPDX-License-Identifier: Apache-2.0
// Control-API request validation: indices, paths, sizes, modes, deadlines.
#include "vmm/api/api_validate.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace nv::vmm::api {
namespace {

namespace fs = std::filesystem;

class ApiValidateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("nv-api-validate-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    std::ofstream(dir_ / "ok.img") << std::string(4096, 'x');
    std::ofstream(dir_ / "odd.img") << std::string(513, 'x');
    std::ofstream(dir_ / "empty.img");
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const char* name) { return (dir_ / name).string(); }

  // The error's code and that its message contains `text`.
  static void expectError(const Result<void>& r, Errc code, const std::string& text) {
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().is(code)) << r.error().message();
    EXPECT_NE(r.error().message().find(text), std::string::npos) << r.error().message();
  }

  fs::path dir_;
};

TEST_F(ApiValidateTest, DiskIndex_InRangeOnly) {
  EXPECT_TRUE(validateDiskIndex(0, 1));
  EXPECT_TRUE(validateDiskIndex(7, 8));
  expectError(validateDiskIndex(1, 1), Errc::kInvalidArgument,
              "disk index 1 out of range: the VM has 1 disk (0..0)");
  expectError(validateDiskIndex(0xFFFFFFFF, 3), Errc::kInvalidArgument, "has 3 disks (0..2)");
  expectError(validateDiskIndex(0, 0), Errc::kInvalidArgument, "the VM has no disks");
}

TEST_F(ApiValidateTest, MediaPath_GoodFileAccepted) {
  EXPECT_TRUE(validateMediaPath(path("ok.img"), false, false));
  EXPECT_TRUE(validateMediaPath(path("ok.img"), true, true));
}

TEST_F(ApiValidateTest, MediaPath_MalformedPathsRefused) {
  expectError(validateMediaPath("", false, false), Errc::kInvalidArgument, "path is empty");
  expectError(validateMediaPath("disk.img", false, false), Errc::kInvalidArgument,
              "is not absolute");
  expectError(validateMediaPath("/a/../etc/passwd", false, false), Errc::kInvalidArgument,
              "'..' component");
  expectError(validateMediaPath("/a/./b", false, false), Errc::kInvalidArgument,
              "'.' component");
  expectError(validateMediaPath(std::string("/tmp/a\0b", 8), false, false),
              Errc::kInvalidArgument, "NUL byte");
  expectError(validateMediaPath("/" + std::string(5000, 'a'), false, false),
              Errc::kInvalidArgument, "longer than 4095");
}

TEST_F(ApiValidateTest, MediaPath_WrongFilesRefused) {
  expectError(validateMediaPath(path("missing.img"), false, false), Errc::kNotFound,
              "does not exist");
  expectError(validateMediaPath(path("missing/sub.img"), false, false), Errc::kNotFound,
              "does not exist");
  expectError(validateMediaPath(dir_.string(), false, false), Errc::kInvalidArgument,
              "not a regular file or block device");
  expectError(validateMediaPath("/dev/null", false, false), Errc::kInvalidArgument,
              "not a regular file or block device");
  expectError(validateMediaPath(path("empty.img"), false, false), Errc::kInvalidArgument,
              "is empty");
  expectError(validateMediaPath(path("odd.img"), false, false), Errc::kInvalidArgument,
              "513 bytes, not a multiple of 512");
}

TEST_F(ApiValidateTest, MediaPath_ModeMustMatchTheDisk) {
  expectError(validateMediaPath(path("ok.img"), true, false), Errc::kInvalidArgument,
              "disk is read-only and its mode cannot change at runtime; set read_only=true");
  expectError(validateMediaPath(path("ok.img"), false, true), Errc::kInvalidArgument,
              "disk is read-write");
}

TEST(ApiShutdownDeadline, DefaultRangeAndLimit) {
  EXPECT_EQ(shutdownDeadline(0).value(), std::chrono::milliseconds(kDefaultShutdownDeadlineMs));
  EXPECT_EQ(shutdownDeadline(1).value(), std::chrono::milliseconds(1));
  EXPECT_EQ(shutdownDeadline(kMaxShutdownDeadlineMs).value(),
            std::chrono::milliseconds(kMaxShutdownDeadlineMs));
  auto r = shutdownDeadline(kMaxShutdownDeadlineMs + 1);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().is(Errc::kInvalidArgument));
  EXPECT_NE(r.error().message().find("deadline_ms 600001"), std::string::npos);
}

}  // namespace
}  // namespace nv::vmm::api
