// SPDX-License-Identifier: Apache-2.0
// A minimal blocking ttrpc client for the agent tests: one call at a time per connection.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/message_lite.h>
#include <google/protobuf/wire_format_lite.h>

#include "common/unique_fd.h"

namespace nv::agent::testing {

struct CallStatus {
  int code = 0;  // ttrpc/gRPC status code; -1 for a transport failure
  std::string message;
  [[nodiscard]] bool ok() const { return code == 0; }
};

class TtrpcTestClient {
 public:
  // Connects to a Unix socket; valid() is false when that fails.
  explicit TtrpcTestClient(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    fd_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (::connect(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) < 0) {
      fd_.reset();
    }
  }
  [[nodiscard]] bool valid() const { return fd_.valid(); }

  // Connects, retrying for up to `ms` while the server is not listening yet (a Unix socket's
  // file exists from bind(), before listen()).
  static TtrpcTestClient connectRetrying(const std::string& path, int ms = 10000) {
    TtrpcTestClient c(path);
    for (int waited = 0; !c.valid() && waited < ms; waited += 10) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      c = TtrpcTestClient(path);
    }
    return c;
  }

  // Makes calls fail (code -1) instead of blocking longer than `seconds` for a response.
  void setTimeout(int seconds) {
    timeval tv{seconds, 0};
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }

  // Sends raw frame bytes (for malformed-input tests).
  bool sendRaw(const std::string& bytes) {
    return ::write(fd_.get(), bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size());
  }

  CallStatus call(const std::string& method, const google::protobuf::MessageLite& req,
                  google::protobuf::MessageLite* resp,
                  const std::string& service = "nanovisor.agent.v1.AgentService") {
    std::string body;
    {
      google::protobuf::io::StringOutputStream stream(&body);
      google::protobuf::io::CodedOutputStream out(&stream);
      std::string payload = req.SerializeAsString();
      const std::pair<int, const std::string*> fields[] = {
          {1, &service}, {2, &method}, {3, &payload}};
      for (auto [field, value] : fields) {
        out.WriteTag(static_cast<uint32_t>(field << 3 | 2));
        out.WriteVarint32(static_cast<uint32_t>(value->size()));
        out.WriteString(*value);
      }
    }
    stream_id_ += 2;
    std::string frame = header(static_cast<uint32_t>(body.size()), stream_id_, 1) + body;
    if (!sendRaw(frame)) {
      return {-1, "write failed"};
    }
    std::string reply;
    if (!readFrame(reply)) {
      return {-1, "connection closed"};
    }
    return decode(reply, resp);
  }

  static std::string header(uint32_t len, uint32_t stream, uint8_t type) {
    std::string h(10, '\0');
    for (int i = 0; i < 4; ++i) {
      h[static_cast<size_t>(i)] = static_cast<char>((len >> (24 - 8 * i)) & 0xff);
      h[static_cast<size_t>(4 + i)] = static_cast<char>((stream >> (24 - 8 * i)) & 0xff);
    }
    h[8] = static_cast<char>(type);
    return h;
  }

  bool readFrame(std::string& body) {
    uint8_t h[10];
    if (!readFull(h, sizeof(h))) {
      return false;
    }
    uint32_t len = (uint32_t{h[0]} << 24) | (uint32_t{h[1]} << 16) | (uint32_t{h[2]} << 8) | h[3];
    body.assign(len, '\0');
    return readFull(reinterpret_cast<uint8_t*>(body.data()), len);
  }

 private:
  bool readFull(uint8_t* p, size_t n) {
    while (n > 0) {
      ssize_t r = ::read(fd_.get(), p, n);
      if (r <= 0) {
        return false;
      }
      p += r;
      n -= static_cast<size_t>(r);
    }
    return true;
  }

  static CallStatus decode(const std::string& reply, google::protobuf::MessageLite* resp) {
    using google::protobuf::io::CodedInputStream;
    CallStatus status;
    std::string payload;
    CodedInputStream in(reinterpret_cast<const uint8_t*>(reply.data()),
                        static_cast<int>(reply.size()));
    while (uint32_t tag = in.ReadTag()) {
      uint32_t len = 0;
      std::string value;
      if ((tag & 7) != 2 || !in.ReadVarint32(&len) || !in.ReadString(&value, static_cast<int>(len))) {
        return {-1, "bad response"};
      }
      if ((tag >> 3) == 2) {
        payload = value;
      } else if ((tag >> 3) == 1) {
        CodedInputStream s(reinterpret_cast<const uint8_t*>(value.data()),
                           static_cast<int>(value.size()));
        while (uint32_t t = s.ReadTag()) {
          if ((t >> 3) == 1) {
            uint32_t code = 0;
            s.ReadVarint32(&code);
            status.code = static_cast<int>(code);
          } else if ((t >> 3) == 2) {
            uint32_t l = 0;
            s.ReadVarint32(&l);
            s.ReadString(&status.message, static_cast<int>(l));
          } else {
            google::protobuf::internal::WireFormatLite::SkipField(&s, t);
          }
        }
      }
    }
    if (status.ok() && resp != nullptr && !resp->ParseFromString(payload)) {
      return {-1, "response payload does not parse"};
    }
    return status;
  }

  UniqueFd fd_;
  uint32_t stream_id_ = 1;
};

}  // namespace nv::agent::testing
