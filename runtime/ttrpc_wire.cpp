// SPDX-License-Identifier: Apache-2.0
#include "runtime/ttrpc_wire.h"

#include <sys/socket.h>
#include <unistd.h>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/wire_format_lite.h>

#include "common/syscall.h"

namespace nv::runtime::ttrpc {
namespace {

using google::protobuf::internal::WireFormatLite;
using google::protobuf::io::CodedInputStream;

constexpr uint32_t kLengthTag(int field) {
  return WireFormatLite::MakeTag(field, WireFormatLite::WIRETYPE_LENGTH_DELIMITED);
}
constexpr uint32_t kVarintTag(int field) {
  return WireFormatLite::MakeTag(field, WireFormatLite::WIRETYPE_VARINT);
}

CodedInputStream inputOf(const std::string& bytes) {
  // Bounds: the stream reads only within [data, data + size) of `bytes`.
  return CodedInputStream(reinterpret_cast<const uint8_t*>(bytes.data()),
                          static_cast<int>(bytes.size()));
}

template <class F>
std::string encode(F&& write_fields) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    write_fields(coded);
  }
  return out;
}

bool readExactly(int fd, void* buf, size_t len, size_t* got) {
  auto* p = static_cast<uint8_t*>(buf);
  *got = 0;
  while (*got < len) {
    ssize_t n = retryOnEintr([&] { return ::read(fd, p + *got, len - *got); });
    if (n <= 0) return false;
    *got += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

std::string encodeRequest(const Request& r) {
  return encode([&](auto& out) {
    WireFormatLite::WriteString(1, r.service, &out);
    WireFormatLite::WriteString(2, r.method, &out);
    WireFormatLite::WriteBytes(3, r.payload, &out);
    if (r.timeout_nano != 0) WireFormatLite::WriteInt64(4, r.timeout_nano, &out);
  });
}

Result<Request> decodeRequest(const std::string& body) {
  Request r;
  auto in = inputOf(body);
  while (uint32_t tag = in.ReadTag()) {
    bool ok = true;
    if (tag == kLengthTag(1)) {
      ok = WireFormatLite::ReadString(&in, &r.service);
    } else if (tag == kLengthTag(2)) {
      ok = WireFormatLite::ReadString(&in, &r.method);
    } else if (tag == kLengthTag(3)) {
      ok = WireFormatLite::ReadBytes(&in, &r.payload);
    } else if (tag == kVarintTag(4)) {
      uint64_t v = 0;
      ok = in.ReadVarint64(&v);
      r.timeout_nano = static_cast<int64_t>(v);
    } else {
      ok = WireFormatLite::SkipField(&in, tag);
    }
    if (!ok) return fail(Errc::kProtocol, "ttrpc: malformed request");
  }
  if (!in.ConsumedEntireMessage()) return fail(Errc::kProtocol, "ttrpc: malformed request");
  return r;
}

std::string encodeResponse(const Response& r) {
  std::string status = encode([&](auto& out) {
    if (r.code != 0) WireFormatLite::WriteInt32(1, r.code, &out);
    if (!r.message.empty()) WireFormatLite::WriteString(2, r.message, &out);
  });
  return encode([&](auto& out) {
    if (!status.empty()) WireFormatLite::WriteBytes(1, status, &out);
    if (!r.payload.empty()) WireFormatLite::WriteBytes(2, r.payload, &out);
  });
}

Result<Response> decodeResponse(const std::string& body) {
  Response r;
  auto in = inputOf(body);
  while (uint32_t tag = in.ReadTag()) {
    bool ok = true;
    if (tag == kLengthTag(1)) {
      std::string status;
      ok = WireFormatLite::ReadBytes(&in, &status);
      auto sin = inputOf(status);
      while (ok && (tag = sin.ReadTag()) != 0) {
        if (tag == kVarintTag(1)) {
          uint32_t code = 0;
          ok = sin.ReadVarint32(&code);
          r.code = static_cast<int>(code);
        } else if (tag == kLengthTag(2)) {
          ok = WireFormatLite::ReadString(&sin, &r.message);
        } else {
          ok = WireFormatLite::SkipField(&sin, tag);
        }
      }
    } else if (tag == kLengthTag(2)) {
      ok = WireFormatLite::ReadBytes(&in, &r.payload);
    } else {
      ok = WireFormatLite::SkipField(&in, tag);
    }
    if (!ok) return fail(Errc::kProtocol, "ttrpc: malformed response");
  }
  if (!in.ConsumedEntireMessage()) return fail(Errc::kProtocol, "ttrpc: malformed response");
  return r;
}

Result<void> writeFrame(int fd, uint32_t stream, uint8_t type, const std::string& body) {
  if (body.size() > kMaxMessage) return fail(Errc::kTooLarge, "ttrpc: message over 4 MiB");
  std::string frame(10, '\0');
  const auto length = static_cast<uint32_t>(body.size());
  for (int i = 0; i < 4; ++i) {
    frame[static_cast<size_t>(i)] = static_cast<char>(length >> (24 - 8 * i));
    frame[static_cast<size_t>(4 + i)] = static_cast<char>(stream >> (24 - 8 * i));
  }
  frame[8] = static_cast<char>(type);
  frame += body;
  size_t sent = 0;
  while (sent < frame.size()) {
    ssize_t n = retryOnEintr(
        [&] { return ::send(fd, frame.data() + sent, frame.size() - sent, MSG_NOSIGNAL); });
    if (n < 0 && errno == ENOTSOCK) {
      n = retryOnEintr([&] { return ::write(fd, frame.data() + sent, frame.size() - sent); });
    }
    if (n <= 0) return failErrno("ttrpc: write");
    sent += static_cast<size_t>(n);
  }
  return {};
}

Result<Frame> readFrame(int fd) {
  uint8_t header[10];
  size_t got = 0;
  if (!readExactly(fd, header, sizeof(header), &got)) {
    if (got == 0) return fail(Errc::kUnavailable, "ttrpc: connection closed");
    return fail(Errc::kProtocol, "ttrpc: truncated frame header");
  }
  Frame frame;
  uint32_t length = 0;
  for (int i = 0; i < 4; ++i) {
    length = (length << 8) | header[i];
    frame.stream = (frame.stream << 8) | header[4 + i];
  }
  frame.type = header[8];
  if (length > kMaxMessage) {
    return fail(Errc::kTooLarge, "ttrpc: frame of " + std::to_string(length) + " bytes over 4 MiB");
  }
  frame.body.resize(length);
  if (!readExactly(fd, frame.body.data(), length, &got)) {
    return fail(Errc::kProtocol, "ttrpc: truncated frame body");
  }
  return frame;
}

Error statusToError(int code, const std::string& message) {
  Errc errc = Errc::kInternal;
  switch (code) {
    case 1: errc = Errc::kCancelled; break;
    case 3: errc = Errc::kInvalidArgument; break;
    case 4: errc = Errc::kTimeout; break;
    case 5: errc = Errc::kNotFound; break;
    case 6: errc = Errc::kAlreadyExists; break;
    case 7: errc = Errc::kPermission; break;
    case 9: errc = Errc::kInvalidArgument; break;  // FAILED_PRECONDITION
    case 12: errc = Errc::kUnsupported; break;
    case 14: errc = Errc::kUnavailable; break;
    default: break;
  }
  return Error(errc, message);
}

int errorToStatus(const Error& error) {
  if (error.is(Errc::kCancelled)) return 1;
  if (error.is(Errc::kInvalidArgument)) return 3;
  if (error.is(Errc::kTimeout)) return 4;
  if (error.is(Errc::kNotFound)) return 5;
  if (error.is(Errc::kAlreadyExists)) return 6;
  if (error.is(Errc::kPermission)) return 7;
  if (error.is(Errc::kUnsupported)) return 12;
  if (error.is(Errc::kUnavailable)) return 14;
  return 13;  // INTERNAL
}

}  // namespace nv::runtime::ttrpc
