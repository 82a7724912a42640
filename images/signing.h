// SPDX-License-Identifier: Apache-2.0
// Detached image signatures: ECDSA P-256/SHA-256 or Ed25519 over the manifest digest string
// ("sha256:<hex>", ASCII), stored as <root>/sigs/<manifest-hex>/<n>.sig, each a JSON object
// {"keyid": sha256 hex of the public key's DER SubjectPublicKeyInfo,
//  "algorithm": "ecdsa-p256-sha256" | "ed25519", "signature": base64}.
#pragma once

#include <string>
#include <vector>

#include "common/result.h"
#include "images/store.h"

namespace nv::images {

inline constexpr std::string_view kAlgEcdsaP256 = "ecdsa-p256-sha256";
inline constexpr std::string_view kAlgEd25519 = "ed25519";

struct Signature {
  std::string keyid;
  std::string algorithm;
  std::string signature_b64;
};

// Signs `image`'s manifest digest with the PEM private key at `key_path` and stores the
// signature. Returns the new .sig file's path.
Result<std::string> sign(Store& store, const ImageRecord& image, const std::string& key_path);

// The stored signatures of a manifest digest (malformed files are an error).
Result<std::vector<Signature>> loadSignatures(const Store& store, const std::string& digest);

// A public key loaded from PEM (SubjectPublicKeyInfo, or the public half of a private key).
class PublicKey {
 public:
  static Result<PublicKey> load(const std::string& pem_path);
  static Result<PublicKey> fromPem(std::string_view pem, std::string_view what);
  PublicKey(PublicKey&&) noexcept;
  PublicKey& operator=(PublicKey&&) noexcept;
  ~PublicKey();

  [[nodiscard]] const std::string& keyid() const { return keyid_; }
  [[nodiscard]] const std::string& algorithm() const { return algorithm_; }
  // Verifies `sig` over `payload`. Errors name why (algorithm, encoding, bad signature).
  [[nodiscard]] Result<void> verify(const Signature& sig, std::string_view payload) const;

 private:
  PublicKey() = default;
  void* pkey_ = nullptr;  // EVP_PKEY*
  std::string keyid_;
  std::string algorithm_;
};

std::string base64Encode(std::string_view data);
Result<std::string> base64Decode(std::string_view text);

}  // namespace nv::images
