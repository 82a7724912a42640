// SPDX-License-Identifier: Apache-2.0
// SHA-256 hashing (OpenSSL EVP) and OCI digest strings ("sha256:<64 lowercase hex>").
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "common/result.h"

namespace nv::images {

// Streaming SHA-256. update() any number of times, then hex() once.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(const void* data, size_t len);
  void update(std::string_view data) { update(data.data(), data.size()); }
  // Finishes the hash and returns 64 lowercase hex characters.
  [[nodiscard]] std::string hex();

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

// The lowercase hex SHA-256 of `data`.
std::string sha256Hex(std::string_view data);

// The hex SHA-256 of a file's contents (streamed).
Result<std::string> sha256File(const std::string& path);

// Validates "sha256:<64 lowercase hex>" and returns the hex part. Other algorithms are refused.
Result<std::string> digestHex(std::string_view digest);

// "sha256:" + hex.
inline std::string digestOf(std::string_view hex) { return "sha256:" + std::string(hex); }

// True if `s` is exactly 64 lowercase hex characters.
bool isSha256Hex(std::string_view s);

}  // namespace nv::images
