// SPDX-License-Identifier: Apache-2.0
// Policy and signature tests: requireSigned, wrong key, both algorithms, name patterns.
#include "images/policy.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "images/signing.h"
#include "tests/unit/images/image_builder.h"

namespace nv::images {
namespace {

using testing::LayoutBuilder;
using testing::makeTar;
using testing::TempDir;

// Generates a key pair; writes <base>.key (private) and <base>.pub (public) PEM files.
void makeKey(const std::string& base, bool ed25519) {
  EVP_PKEY* k = ed25519 ? EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519")
                        : EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  ASSERT_NE(k, nullptr);
  FILE* f = std::fopen((base + ".key").c_str(), "w");
  PEM_write_PrivateKey(f, k, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
  f = std::fopen((base + ".pub").c_str(), "w");
  PEM_write_PUBKEY(f, k);
  std::fclose(f);
  EVP_PKEY_free(k);
}

class PolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = Store::open(tmp_.sub("store"));
    ASSERT_TRUE(s);
    store_.emplace(std::move(*s));
    LayoutBuilder b;
    b.ref_name = "docker.io/library/busybox:latest";
    b.layers.push_back({makeTar({{"bin/sh", 'f', "sh", 0755}}), Compression::kNone});
    b.write(tmp_.sub("layout"));
    ImportOptions o;
    o.build_rootfs = false;
    auto r = store_->import(tmp_.sub("layout"), o);
    ASSERT_TRUE(r) << r.error().message();
    image_ = (*r)[0];
    makeKey(tmp_.sub("ec"), false);
    makeKey(tmp_.sub("ed"), true);
    makeKey(tmp_.sub("other"), false);
  }

  Policy requireKey(const std::string& base) {
    Policy p;
    p.require_signed = true;
    p.trusted_keys = {tmp_.sub(base + ".pub")};
    return p;
  }

  TempDir tmp_;
  std::optional<Store> store_;
  ImageRecord image_;
};

TEST_F(PolicyTest, UnsignedImageRefusedUnderRequireSigned) {
  auto r = checkPolicy(*store_, image_, requireKey("ec"));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("policy rule requireSigned"), std::string::npos);
  EXPECT_NE(r.error().message().find("no signature"), std::string::npos);
  EXPECT_TRUE(checkPolicy(*store_, image_, Policy{}));
}

TEST_F(PolicyTest, EcdsaAndEd25519SignaturesVerify) {
  auto s1 = sign(*store_, image_, tmp_.sub("ec.key"));
  ASSERT_TRUE(s1) << s1.error().message();
  auto r = checkPolicy(*store_, image_, requireKey("ec"));
  EXPECT_TRUE(r) << r.error().message();
  ASSERT_TRUE(sign(*store_, image_, tmp_.sub("ed.key")));
  r = checkPolicy(*store_, image_, requireKey("ed"));
  EXPECT_TRUE(r) << r.error().message();
  auto sigs = loadSignatures(*store_, image_.digest);
  ASSERT_TRUE(sigs);
  ASSERT_EQ(sigs->size(), 2u);
  EXPECT_EQ((*sigs)[0].algorithm, kAlgEcdsaP256);
  EXPECT_EQ((*sigs)[1].algorithm, kAlgEd25519);
}

TEST_F(PolicyTest, WrongKeyRefused) {
  ASSERT_TRUE(sign(*store_, image_, tmp_.sub("ec.key")));
  auto r = checkPolicy(*store_, image_, requireKey("other"));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("verifies with a trusted key"), std::string::npos)
      << r.error().message();
}

TEST_F(PolicyTest, TamperedSignatureRefused) {
  auto path = sign(*store_, image_, tmp_.sub("ec.key"));
  ASSERT_TRUE(path);
  auto sigs = loadSignatures(*store_, image_.digest);
  ASSERT_TRUE(sigs);
  // A signature over a different digest must not verify for this one.
  auto key = PublicKey::load(tmp_.sub("ec.pub"));
  ASSERT_TRUE(key);
  EXPECT_TRUE(key->verify((*sigs)[0], image_.digest));
  EXPECT_FALSE(key->verify((*sigs)[0], "sha256:" + std::string(64, '0')));
}

TEST_F(PolicyTest, NamePatterns) {
  Policy p;
  p.allowed_names = {"example.com/*"};
  auto r = checkPolicy(*store_, image_, p);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("policy rule allowedNames"), std::string::npos);
  p.allowed_names.push_back("docker.io/library/*");
  EXPECT_TRUE(checkPolicy(*store_, image_, p));
}

TEST_F(PolicyTest, ParsesStrictly) {
  auto p = parsePolicy(R"({"allowedNames":["a/*"],"trustedKeys":["/k.pem"],"requireSigned":true,
                          "allowSetuid":true})");
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_TRUE(p->require_signed);
  EXPECT_TRUE(p->layerLimits().allow_setuid);
  auto bad = parsePolicy(R"({"requireSigned":true,"trustedKeys":[],"extra":1})");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("unknown field 'extra'"), std::string::npos);
  EXPECT_FALSE(parsePolicy(R"({"requireSigned":true})"));
  EXPECT_FALSE(parsePolicy(R"({"requireSigned":"yes"})"));
}

}  // namespace
}  // namespace nv::images
