// SPDX-License-Identifier: Apache-2.0
// RotatingLog: a detached sandbox's output.log stays within two files of max_bytes each, the
// newest output is kept whole, and rotatedLogFiles lists them oldest first.
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "runtime/stdio.h"

namespace nv::runtime {
namespace {

namespace fs = std::filesystem;

std::string read(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class RotatingLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/nv-rotlog-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ / "output.log";
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_, path_;
};

TEST_F(RotatingLogTest, BelowTheLimit_OneFileAppended) {
  std::ofstream(path_) << "earlier\n";  // a restarted writer appends
  auto log = RotatingLog::open(path_, 100);
  ASSERT_TRUE(log) << log.error().message();
  EXPECT_TRUE((*log)->write("a\n"));
  EXPECT_TRUE((*log)->write("b\n"));
  EXPECT_EQ(read(path_), "earlier\na\nb\n");
  EXPECT_EQ(rotatedLogFiles(path_), std::vector<fs::path>{path_});
}

TEST_F(RotatingLogTest, Flood_KeepsTwoFilesWithinTheLimitAndTheNewestOutput) {
  auto log = RotatingLog::open(path_, 1000);
  ASSERT_TRUE(log);
  std::string all;
  for (int i = 0; i < 1000; ++i) {
    const std::string line = "line " + std::to_string(i) + "\n";
    ASSERT_TRUE((*log)->write(line));
    all += line;
  }
  EXPECT_LE(fs::file_size(path_), 1000u);
  EXPECT_LE(fs::file_size(path_.string() + ".1"), 1000u);
  const auto files = rotatedLogFiles(path_);
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(files[0], path_.string() + ".1");
  std::string kept;
  for (const auto& f : files) kept += read(f);
  EXPECT_GT(kept.size(), 1000u);
  EXPECT_EQ(all.substr(all.size() - kept.size()), kept) << "not the newest output, in order";
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 2);
}

TEST_F(RotatingLogTest, OneWriteOverTheLimit_LandsWhole) {
  auto log = RotatingLog::open(path_, 10);
  ASSERT_TRUE(log);
  EXPECT_TRUE((*log)->write("0123"));
  EXPECT_TRUE((*log)->write(std::string(50, 'x')));
  EXPECT_EQ(read(path_), std::string(50, 'x'));
  EXPECT_EQ(read(path_.string() + ".1"), "0123");
}

TEST_F(RotatingLogTest, UnwritableDirectory_IsAnErrorNamingThePath) {
  auto log = RotatingLog::open(dir_ / "missing" / "output.log", 10);
  ASSERT_FALSE(log);
  EXPECT_NE(log.error().message().find("missing/output.log"), std::string::npos);
}

TEST_F(RotatingLogTest, ConsoleCap_KeepsTheNewestBytesAndTheWriterGoesOnAtTheStart) {
  // The VMM's side: an O_APPEND descriptor it keeps writing through.
  UniqueFd vmm(::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  ASSERT_TRUE(vmm);
  ConsoleLogCap cap(path_, 100);
  std::string flood;
  for (int i = 0; i < 40; ++i) flood += "line" + std::to_string(i) + "\n";
  ASSERT_EQ(::write(vmm.get(), flood.data(), flood.size()), static_cast<ssize_t>(flood.size()));
  cap.check();
  EXPECT_EQ(read(path_.string() + ".1"), flood.substr(flood.size() - 100));
  EXPECT_EQ(fs::file_size(path_), 0u);
  ASSERT_EQ(::write(vmm.get(), "next\n", 5), 5);
  EXPECT_EQ(read(path_), "next\n") << "the writer did not go on at the start (no O_APPEND?)";
  cap.check();  // below the limit: left alone
  EXPECT_EQ(read(path_), "next\n");
}

}  // namespace
}  // namespace nv::runtime
