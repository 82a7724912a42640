// SPDX-License-Identifier: Apache-2.0
// Signing and verifying manifest digests with OpenSSL EVP (ECDSA P-256, Ed25519).
#include "images/signing.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <memory>

#include <nlohmann/json.hpp>

#include "images/digest.h"
#include "images/layer.h"

namespace nv::images {
namespace {

using nlohmann::json;

struct PkeyDeleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;
struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxDeleter>;

// The algorithm name of a supported key, or an error for anything else.
Result<std::string> keyAlgorithm(EVP_PKEY* k, std::string_view what) {
  int id = EVP_PKEY_get_base_id(k);
  if (id == EVP_PKEY_ED25519) {
    return std::string(kAlgEd25519);
  }
  if (id == EVP_PKEY_EC) {
    char group[64] = {};
    size_t len = 0;
    if (EVP_PKEY_get_group_name(k, group, sizeof(group), &len) == 1 &&
        (std::string_view(group) == "prime256v1" || std::string_view(group) == "P-256")) {
      return std::string(kAlgEcdsaP256);
    }
    return fail(Errc::kUnsupported, std::string(what) + ": EC key is not on curve P-256");
  }
  return fail(Errc::kUnsupported, std::string(what) + ": key is neither ECDSA P-256 nor Ed25519");
}

Result<std::string> keyId(EVP_PKEY* k) {
  unsigned char* der = nullptr;
  int len = i2d_PUBKEY(k, &der);
  if (len <= 0) {
    return fail(Errc::kInternal, "cannot encode public key");
  }
  std::string id = sha256Hex(std::string_view(reinterpret_cast<const char*>(der), static_cast<size_t>(len)));
  OPENSSL_free(der);
  return id;
}

const EVP_MD* mdFor(std::string_view alg) {
  return alg == kAlgEd25519 ? nullptr : EVP_sha256();
}

}  // namespace

std::string base64Encode(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(data.data()),
                          static_cast<int>(data.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

Result<std::string> base64Decode(std::string_view text) {
  if (text.size() % 4 != 0 || text.size() > (1 << 16)) {
    return fail(Errc::kInvalidArgument, "signature is not valid base64");
  }
  std::string out(3 * text.size() / 4 + 1, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()),
                          static_cast<int>(text.size()));
  if (n < 0) {
    return fail(Errc::kInvalidArgument, "signature is not valid base64");
  }
  auto len = static_cast<size_t>(n);
  for (size_t i = text.size(); i > 0 && text[i - 1] == '=' && len > 0; --i) {
    --len;  // EVP_DecodeBlock counts padding as zero bytes
  }
  out.resize(len);
  return out;
}

Result<PublicKey> PublicKey::fromPem(std::string_view pem, std::string_view what) {
  std::unique_ptr<BIO, int (*)(BIO*)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())),
                                          BIO_free);
  EVP_PKEY* k = PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr);
  if (k == nullptr) {
    std::unique_ptr<BIO, int (*)(BIO*)> bio2(
        BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
    k = PEM_read_bio_PrivateKey(bio2.get(), nullptr, nullptr, nullptr);
  }
  if (k == nullptr) {
    return fail(Errc::kInvalidArgument, std::string(what) + " is not a PEM public key");
  }
  PkeyPtr owned(k);
  PublicKey key;
  NV_ASSIGN_OR_RETURN(key.algorithm_, keyAlgorithm(k, what));
  NV_ASSIGN_OR_RETURN(key.keyid_, keyId(k));
  key.pkey_ = owned.release();
  return key;
}

Result<PublicKey> PublicKey::load(const std::string& pem_path) {
  NV_ASSIGN_OR_RETURN(std::string pem, readFileBounded(pem_path, 1 << 16));
  return fromPem(pem, "key " + pem_path);
}

PublicKey::PublicKey(PublicKey&& o) noexcept
    : pkey_(std::exchange(o.pkey_, nullptr)),
      keyid_(std::move(o.keyid_)),
      algorithm_(std::move(o.algorithm_)) {}

PublicKey& PublicKey::operator=(PublicKey&& o) noexcept {
  if (this != &o) {
    EVP_PKEY_free(static_cast<EVP_PKEY*>(pkey_));
    pkey_ = std::exchange(o.pkey_, nullptr);
    keyid_ = std::move(o.keyid_);
    algorithm_ = std::move(o.algorithm_);
  }
  return *this;
}

PublicKey::~PublicKey() { EVP_PKEY_free(static_cast<EVP_PKEY*>(pkey_)); }

Result<void> PublicKey::verify(const Signature& sig, std::string_view payload) const {
  if (sig.algorithm != algorithm_) {
    return fail(Errc::kIntegrity, "signature algorithm " + sig.algorithm.substr(0, 40) +
                                      " does not match key type " + algorithm_);
  }
  NV_ASSIGN_OR_RETURN(std::string raw, base64Decode(sig.signature_b64));
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, mdFor(algorithm_), nullptr,
                           static_cast<EVP_PKEY*>(pkey_)) != 1) {
    return fail(Errc::kInternal, "EVP_DigestVerifyInit failed");
  }
  int ok = EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(raw.data()),
                            raw.size(), reinterpret_cast<const unsigned char*>(payload.data()),
                            payload.size());
  if (ok != 1) {
    return fail(Errc::kIntegrity, "signature does not verify with key " + keyid_.substr(0, 16));
  }
  return {};
}

Result<std::string> sign(Store& store, const ImageRecord& image, const std::string& key_path) {
  NV_ASSIGN_OR_RETURN(std::string pem, readFileBounded(key_path, 1 << 16));
  std::unique_ptr<BIO, int (*)(BIO*)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())),
                                          BIO_free);
  PkeyPtr k(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!k) {
    return fail(Errc::kInvalidArgument, "key " + key_path + " is not a PEM private key");
  }
  NV_ASSIGN_OR_RETURN(std::string alg, keyAlgorithm(k.get(), "key " + key_path));
  NV_ASSIGN_OR_RETURN(std::string id, keyId(k.get()));
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (EVP_DigestSignInit(ctx.get(), nullptr, mdFor(alg), nullptr, k.get()) != 1) {
    return fail(Errc::kInternal, "EVP_DigestSignInit failed");
  }
  const auto* payload = reinterpret_cast<const unsigned char*>(image.digest.data());
  size_t len = 0;
  if (EVP_DigestSign(ctx.get(), nullptr, &len, payload, image.digest.size()) != 1) {
    return fail(Errc::kInternal, "EVP_DigestSign failed");
  }
  std::string raw(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(raw.data()), &len, payload,
                     image.digest.size()) != 1) {
    return fail(Errc::kInternal, "EVP_DigestSign failed");
  }
  raw.resize(len);
  json j = {{"keyid", id}, {"algorithm", alg}, {"signature", base64Encode(raw)}};

  NV_ASSIGN_OR_RETURN(StoreLock held, store.lock());
  (void)held;
  std::string dir = store.sigsDir() + "/" + image.digest.substr(7);
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return failErrno("mkdir " + dir);
  }
  for (int n = 0; n < 1000; ++n) {
    std::string path = dir + "/" + std::to_string(n) + ".sig";
    if (::access(path.c_str(), F_OK) != 0) {
      NV_TRY(writeFileAtomic(path, j.dump() + "\n"));
      return path;
    }
  }
  return fail(Errc::kTooLarge, "image already has 1000 signatures");
}

Result<std::vector<Signature>> loadSignatures(const Store& store, const std::string& digest) {
  NV_ASSIGN_OR_RETURN(std::string hex, digestHex(digest));
  std::vector<Signature> out;
  std::string dir = store.sigsDir() + "/" + hex;
  for (int n = 0; n < 1000; ++n) {
    std::string path = dir + "/" + std::to_string(n) + ".sig";
    if (::access(path.c_str(), F_OK) != 0) {
      break;
    }
    NV_ASSIGN_OR_RETURN(std::string text, readFileBounded(path, 1 << 16));
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("algorithm") ||
        !j["algorithm"].is_string() || !j.contains("signature") || !j["signature"].is_string()) {
      return fail(Errc::kIntegrity, "signature file " + path + " is malformed");
    }
    Signature s;
    s.algorithm = j["algorithm"].get<std::string>();
    s.signature_b64 = j["signature"].get<std::string>();
    if (j.contains("keyid") && j["keyid"].is_string()) {
      s.keyid = j["keyid"].get<std::string>();
    }
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace nv::images
