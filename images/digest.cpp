// SPDX-License-Identifier: Apache-2.0
// SHA-256 hashing and OCI digest parsing.
#include "images/digest.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <array>

#include "common/syscall.h"
#include "common/unique_fd.h"

namespace nv::images {

struct Sha256::Ctx {
  EVP_MD_CTX* md = nullptr;
};

Sha256::Sha256() : ctx_(std::make_unique<Ctx>()) {
  ctx_->md = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx_->md, EVP_sha256(), nullptr);
}

Sha256::~Sha256() {
  if (ctx_ && ctx_->md != nullptr) {
    EVP_MD_CTX_free(ctx_->md);
  }
}

Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&& other) noexcept {
  if (this != &other) {
    if (ctx_ && ctx_->md != nullptr) {
      EVP_MD_CTX_free(ctx_->md);
    }
    ctx_ = std::move(other.ctx_);
  }
  return *this;
}

void Sha256::update(const void* data, size_t len) {
  if (len > 0) {
    EVP_DigestUpdate(ctx_->md, data, len);
  }
}

std::string Sha256::hex() {
  std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
  unsigned int n = 0;
  EVP_DigestFinal_ex(ctx_->md, out.data(), &n);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  s.reserve(static_cast<size_t>(n) * 2);
  for (unsigned int i = 0; i < n; ++i) {
    s.push_back(kHex[out[i] >> 4]);
    s.push_back(kHex[out[i] & 0xf]);
  }
  return s;
}

std::string sha256Hex(std::string_view data) {
  Sha256 h;
  h.update(data);
  return h.hex();
}

Result<std::string> sha256File(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    return failErrno("open " + path);
  }
  Sha256 h;
  std::array<char, 1 << 16> buf{};
  for (;;) {
    ssize_t n = retryOnEintr([&] { return ::read(fd.get(), buf.data(), buf.size()); });
    if (n < 0) {
      return failErrno("read " + path);
    }
    if (n == 0) {
      break;
    }
    h.update(buf.data(), static_cast<size_t>(n));
  }
  return h.hex();
}

bool isSha256Hex(std::string_view s) {
  if (s.size() != 64) {
    return false;
  }
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

Result<std::string> digestHex(std::string_view digest) {
  constexpr std::string_view kPrefix = "sha256:";
  if (digest.substr(0, kPrefix.size()) != kPrefix) {
    return fail(Errc::kUnsupported, "digest '" + std::string(digest.substr(0, 80)) +
                                        "': only sha256 is supported");
  }
  std::string_view hex = digest.substr(kPrefix.size());
  if (!isSha256Hex(hex)) {
    return fail(Errc::kInvalidArgument,
                "digest '" + std::string(digest.substr(0, 80)) + "': not 64 lowercase hex digits");
  }
  return std::string(hex);
}

}  // namespace nv::images
