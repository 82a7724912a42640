// SPDX-License-Identifier: Apache-2.0
// Secrets in the agent: request validation and the owner lookup that must not leave the
// container's rootfs. (Writing them needs a tmpfs mount, i.e. root: tests/e2e/security.)
#include "agent/secrets.h"

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace nv::agent {
namespace {

google::protobuf::RepeatedPtrField<pb::Secret> secrets(
    std::initializer_list<std::pair<std::string, std::string>> items) {
  google::protobuf::RepeatedPtrField<pb::Secret> out;
  for (const auto& [name, data] : items) {
    auto* s = out.Add();
    s->set_name(name);
    s->set_data(data);
  }
  return out;
}

TEST(Secrets, Validate_PlainNamesPass) {
  EXPECT_TRUE(validateSecrets(secrets({{"db_password", "x"}, {"tls.key", "y"}})));
}

TEST(Secrets, Validate_PathNameIsRefused) {
  auto r = validateSecrets(secrets({{"../etc/passwd", "x"}}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(),
            "secret name '../etc/passwd' must be 1-255 characters of [A-Za-z0-9._-]");
}

TEST(Secrets, Validate_DotDotIsRefused) { EXPECT_FALSE(validateSecrets(secrets({{"..", "x"}}))); }

TEST(Secrets, Validate_DuplicateIsRefused) {
  auto r = validateSecrets(secrets({{"a", "x"}, {"a", "y"}}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "secret 'a' given twice");
}

TEST(Secrets, Validate_OverOneMiBIsRefused) {
  auto r = validateSecrets(secrets({{"big", std::string(kMaxSecretBytes + 1, 'x')}}));
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().is(Errc::kTooLarge));
}

google::protobuf::RepeatedPtrField<pb::SecretVolume> volume(
    const std::string& destination, std::initializer_list<std::pair<std::string, std::string>> files) {
  google::protobuf::RepeatedPtrField<pb::SecretVolume> out;
  auto* v = out.Add();
  v->set_destination(destination);
  *v->mutable_files() = secrets(files);
  return out;
}

TEST(SecretVolumes, Validate_RelativePathsPass) {
  EXPECT_TRUE(validateSecretVolumes(volume("/etc/creds", {{"password", "x"}, {"tls/tls.key", "y"}}),
                                    {}));
}

TEST(SecretVolumes, Validate_BadPathsAndDestinationsAreRefusedNamingThem) {
  for (const char* name : {"../x", "/x", "a//b", "a/", "a/../b", "", "a/b/c/d/e/f/g/h/i"}) {
    auto r = validateSecretVolumes(volume("/etc/creds", {{name, "x"}}), {});
    ASSERT_FALSE(r) << name;
    EXPECT_NE(r.error().message().find(std::string("'") + name + "'"), std::string::npos)
        << r.error().message();
  }
  for (const char* destination : {"etc/creds", "/", "/etc/../creds", "/etc/"}) {
    auto r = validateSecretVolumes(volume(destination, {{"a", "x"}}), {});
    ASSERT_FALSE(r) << destination;
    EXPECT_TRUE(r.error().is(Errc::kInvalidArgument));
  }
}

TEST(SecretVolumes, Validate_FileThatIsAlsoADirectoryIsRefused) {
  auto r = validateSecretVolumes(volume("/c", {{"a", "x"}, {"a/b", "y"}}), {});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("both a file and a directory"), std::string::npos);
}

TEST(SecretVolumes, Validate_TotalWithTheRequestsSecretsIsBounded) {
  const std::string mib(kMaxSecretBytes, 'x');
  EXPECT_TRUE(validateSecretVolumes(volume("/c", {{"a", mib}, {"b", mib}}), secrets({{"s", "x"}})));
  auto r = validateSecretVolumes(volume("/c", {{"a", mib}, {"b", mib}}),
                                 secrets({{"s", mib}, {"t", "x"}}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "secrets total over 3 MiB");
  auto twice = volume("/c", {{"a", "x"}});
  *twice.Add() = twice.Get(0);
  EXPECT_FALSE(validateSecretVolumes(twice, {}));
}

class SecretsOwnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/nv-secrets-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    std::filesystem::create_directories(root_ / "etc");
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  std::filesystem::path root_;
};

TEST_F(SecretsOwnerTest, NumericUser_IsUsedAsIs) {
  auto owner = secretsOwner(root_, UserSpec{.uid = 7, .gid = 8});
  ASSERT_TRUE(owner) << owner.error().message();
  EXPECT_EQ(*owner, std::make_pair(7u, 8u));
}

TEST_F(SecretsOwnerTest, Name_IsResolvedFromTheContainersPasswd) {
  std::ofstream(root_ / "etc/passwd") << "app:x:1234:4321::/home/app:/bin/sh\n";
  std::ofstream(root_ / "etc/group") << "app:x:4321:\n";
  auto owner = secretsOwner(root_, UserSpec{.username = "app"});
  ASSERT_TRUE(owner) << owner.error().message();
  EXPECT_EQ(*owner, std::make_pair(1234u, 4321u));
}

TEST_F(SecretsOwnerTest, AbsoluteSymlink_StaysInsideTheRootfs) {
  // An image whose /etc/passwd points at an absolute path: resolved inside the rootfs, where
  // it does not exist, so the name is unknown (never read from the agent's own files).
  std::filesystem::create_directories(root_ / "elsewhere");
  std::ofstream(root_ / "elsewhere/passwd") << "app:x:55:55::/:/bin/sh\n";
  std::filesystem::create_symlink("/elsewhere/passwd", root_ / "etc/passwd");
  auto owner = secretsOwner(root_, UserSpec{.username = "app"});
  ASSERT_TRUE(owner) << owner.error().message();
  EXPECT_EQ(*owner, std::make_pair(55u, 55u));
  std::filesystem::remove(root_ / "etc/passwd");
  std::filesystem::create_symlink("/etc/passwd", root_ / "etc/passwd");  // the host's
  EXPECT_FALSE(secretsOwner(root_, UserSpec{.username = "root"}));
}

}  // namespace
}  // namespace nv::agent
