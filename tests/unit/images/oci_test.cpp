// SPDX-License-Identifier: Apache-2.0
// Manifest / index / config parsing and validation.
#include "images/oci.h"

#include <gtest/gtest.h>

#include "images/digest.h"

namespace nv::images {
namespace {

const std::string kD = "sha256:" + std::string(64, 'a');

TEST(Oci, ParsesManifest) {
  std::string m = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
    "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" + kD +
                  R"(","size":10},
    "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+zstd","digest":")" + kD +
                  R"(","size":5}]})";
  auto r = parseManifest(m);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->layers.size(), 1u);
  EXPECT_EQ(*layerCompression(r->layers[0].media_type), Compression::kZstd);
}

TEST(Oci, RefusesBadManifests) {
  EXPECT_FALSE(parseManifest("[]"));
  EXPECT_FALSE(parseManifest(R"({"schemaVersion":1})"));
  auto bad_digest = parseManifest(
      R"({"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:XYZ","size":1},"layers":[]})");
  ASSERT_FALSE(bad_digest);
  EXPECT_NE(bad_digest.error().message().find("64 lowercase hex"), std::string::npos);
  auto md5 = parseManifest(
      R"({"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"md5:abc","size":1},"layers":[]})");
  ASSERT_FALSE(md5);
  EXPECT_NE(md5.error().message().find("only sha256"), std::string::npos);
  auto type = parseManifest(
      R"({"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" +
      kD + R"(","size":1},"layers":[{"mediaType":"text/plain","digest":")" + kD + R"(","size":1}]})");
  ASSERT_FALSE(type);
  EXPECT_NE(type.error().message().find("not supported"), std::string::npos);
  auto big = parseManifest(
      R"({"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" +
      kD + R"(","size":99999999},"layers":[]})");
  ASSERT_FALSE(big);
  EXPECT_NE(big.error().message().find("4 MiB"), std::string::npos);
  EXPECT_FALSE(parseManifest(std::string(5u << 20, ' ')));
}

TEST(Oci, PicksLinuxAmd64FromIndex) {
  std::string idx = R"({"schemaVersion":2,"manifests":[
    {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" +
                    std::string("sha256:") + std::string(64, 'b') +
                    R"(","size":1,"platform":{"os":"linux","architecture":"arm64"}},
    {"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":")" + kD +
                    R"(","size":1,"platform":{"os":"linux","architecture":"amd64"}}]})";
  auto i = parseIndex(idx);
  ASSERT_TRUE(i) << i.error().message();
  auto d = pickPlatform(*i);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->digest, kD);
  i->manifests.pop_back();
  auto none = pickPlatform(*i);
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message().find("linux/arm64"), std::string::npos);
}

TEST(Oci, ParsesConfig) {
  auto c = parseConfig(R"({"architecture":"amd64","os":"linux","config":{"Env":["A=1"],"Cmd":["sh"]},
    "rootfs":{"type":"layers","diff_ids":[")" + kD + R"("]}})");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->diff_ids.size(), 1u);
  EXPECT_EQ(c->env[0], "A=1");
  EXPECT_FALSE(parseConfig(R"({"rootfs":{"type":"layers","diff_ids":["nope"]}})"));
  EXPECT_FALSE(parseConfig(R"({"config":{"Cmd":"sh"},"rootfs":{"type":"layers"}})"));
}

TEST(Oci, NormalizesNames) {
  EXPECT_EQ(*normalizeName("busybox"), "busybox:latest");
  EXPECT_EQ(*normalizeName("localhost:5000/x"), "localhost:5000/x:latest");
  EXPECT_EQ(*normalizeName("a/b:1"), "a/b:1");
  EXPECT_FALSE(normalizeName(""));
  EXPECT_FALSE(normalizeName("a b"));
}

TEST(Digest, ValidatesAndHashes) {
  EXPECT_EQ(sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_TRUE(digestHex(kD));
  EXPECT_FALSE(digestHex("sha256:" + std::string(64, 'A')));
  EXPECT_FALSE(digestHex("sha512:" + std::string(128, 'a')));
}

}  // namespace
}  // namespace nv::images
