// SPDX-License-Identifier: Apache-2.0
// ttrpc Server and Client over real Unix sockets and socketpairs (threads: the io loops are
// the thing under test).
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/ttrpc/channel.h"  // detail::postTo
#include "common/ttrpc/client.h"
#include "common/ttrpc/frame.h"
#include "common/ttrpc/server.h"
#include "common/ttrpc/ttrpc.pb.h"

namespace nv::ttrpc {
namespace {

using namespace std::chrono_literals;
constexpr auto kNoTimeout = std::chrono::nanoseconds(0);
constexpr int kReverseCount = 100;

// Runs fn on the io thread and waits for it.
template <class F>
void runOn(IoThread& io, F fn) {
  std::promise<void> done;
  detail::postTo(io.context(), [&] {
    fn();
    done.set_value();
  });
  done.get_future().wait();
}

UniqueFd rawConnect(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  path.copy(addr.sun_path, path.size());
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    return UniqueFd();
  }
  return fd;
}

void writeAll(int fd, const std::string& bytes) {
  ASSERT_EQ(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(bytes.size()));
}

// Reads until EOF (true) or 5 s without progress (false).
bool readUntilEof(int fd, std::string* out) {
  char buf[4096];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 5000) != 1) {
      return false;
    }
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n <= 0) {
      return n == 0 || errno == ECONNRESET;
    }
    out->append(buf, static_cast<size_t>(n));
  }
}

// Parses the first response frame of `wire`.
std::optional<::ttrpc::Response> firstResponse(const std::string& wire) {
  FrameDecoder decoder;
  decoder.feed({reinterpret_cast<const uint8_t*>(wire.data()), wire.size()});
  auto frame = decoder.next();
  if (!frame || !frame->has_value()) {
    return std::nullopt;
  }
  ::ttrpc::Response response;
  if (!response.ParseFromString((*frame)->payload)) {
    return std::nullopt;
  }
  return response;
}

class TtrpcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/nv-ttrpc-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/ttrpc.sock";
    startServer(ServerOptions{});
  }

  void startServer(ServerOptions options) {
    runOn(server_io_, [&] {
      server_.emplace(server_io_.context(), options);
      server_->registerHandler("test.Echo", "Echo", [](Call call, Responder r) {
        r.reply(std::move(call.payload));
      });
      server_->registerHandler("test.Echo", "Fail", [](Call, Responder r) {
        r.fail(Status{StatusCode::kNotFound, "thing not found"});
      });
      server_->registerHandler("test.Echo", "Meta", [](Call call, Responder r) {
        std::string out;
        for (const auto& [k, v] : call.metadata) {
          out += k + "=" + v + ";";
        }
        r.reply(out + (call.deadline ? "deadline" : "none"));
      });
      server_->registerHandler("test.Echo", "Hold", [this](Call, Responder r) {
        ++hold_calls_;
        held_.push_back(std::move(r));
      });
      // Holds kReverseCount calls, then answers them last-first.
      server_->registerHandler("test.Echo", "Reverse", [this](Call call, Responder r) {
        reverse_.emplace_back(std::move(call.payload), std::move(r));
        if (reverse_.size() == kReverseCount) {
          for (auto it = reverse_.rbegin(); it != reverse_.rend(); ++it) {
            it->second.reply(it->first);
          }
          reverse_.clear();
        }
      });
      server_->setConnectionClosedHandler([this](uint64_t, const Error& reason) {
        std::lock_guard lock(mu_);
        closed_reasons_.push_back(reason);
        cv_.notify_all();
      });
      ASSERT_TRUE(server_->listen(path_).has_value());
    });
  }

  void TearDown() override {
    runOn(server_io_, [&] {
      held_.clear();
      reverse_.clear();
      server_.reset();
    });
    std::filesystem::remove_all(dir_);
  }

  // Waits for a connection-closed callback and returns its reason.
  std::optional<Error> waitClosed() {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, 5s, [&] { return !closed_reasons_.empty(); })) {
      return std::nullopt;
    }
    Error e = closed_reasons_.front();
    closed_reasons_.erase(closed_reasons_.begin());
    return e;
  }

  Client connectClient() {
    auto client = Client::connect(client_io_.context(), path_);
    EXPECT_TRUE(client.has_value()) << client.error().message();
    return std::move(*client);
  }

  IoThread server_io_;
  IoThread client_io_;
  std::string dir_;
  std::string path_;
  std::optional<Server> server_;
  std::vector<Responder> held_;  // server io thread only
  int hold_calls_ = 0;           // server io thread only
  std::vector<std::pair<std::string, Responder>> reverse_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Error> closed_reasons_;
};

TEST_F(TtrpcTest, Call_Echo_ReturnsPayload) {
  Client client = connectClient();
  auto out = client.callSync("test.Echo", "Echo", "hello", 5s);
  ASSERT_TRUE(out.has_value()) << out.error().message();
  EXPECT_EQ(*out, "hello");
}

TEST_F(TtrpcTest, CallTyped_ProtobufMessage_RoundTrips) {
  Client client = connectClient();
  ::ttrpc::KeyValue kv;
  kv.set_key("k");
  kv.set_value("v");
  auto out = client.callTyped<::ttrpc::KeyValue>("test.Echo", "Echo", kv, 5s);
  ASSERT_TRUE(out.has_value()) << out.error().message();
  EXPECT_EQ(out->key(), "k");
  EXPECT_EQ(out->value(), "v");
}

TEST_F(TtrpcTest, Call_HandlerFails_ClientGetsMappedStatus) {
  Client client = connectClient();
  auto out = client.callSync("test.Echo", "Fail", "", 5s);
  ASSERT_FALSE(out.has_value());
  EXPECT_TRUE(out.error().is(Errc::kNotFound));
  EXPECT_EQ(statusCode(out.error()), 5);
  EXPECT_NE(out.error().message().find("thing not found"), std::string::npos);
}

TEST_F(TtrpcTest, Call_MetadataAndTimeout_ReachHandler) {
  Client client = connectClient();
  auto out = client.callSync("test.Echo", "Meta", "", 5s, {{"k", "v"}});
  ASSERT_TRUE(out.has_value()) << out.error().message();
  EXPECT_EQ(*out, "k=v;deadline");
  auto none = client.callSync("test.Echo", "Meta", "", kNoTimeout);
  ASSERT_TRUE(none.has_value());
  EXPECT_EQ(*none, "none");
}

TEST_F(TtrpcTest, Call_UnknownMethodOrService_Unimplemented) {
  Client client = connectClient();
  auto method = client.callSync("test.Echo", "Nope", "", 5s);
  auto service = client.callSync("test.Other", "Echo", "", 5s);
  ASSERT_FALSE(method.has_value());
  ASSERT_FALSE(service.has_value());
  EXPECT_TRUE(method.error().is(Errc::kUnsupported));
  EXPECT_EQ(statusCode(method.error()), 12);
  EXPECT_NE(method.error().message().find("method Nope"), std::string::npos);
  EXPECT_NE(service.error().message().find("service test.Other"), std::string::npos);
}

TEST_F(TtrpcTest, HundredConcurrentCalls_AnsweredInReverse_EachMatchesItsRequest) {
  Client client = connectClient();
  std::mutex mu;
  std::vector<std::pair<std::string, Result<std::string>>> results;
  std::promise<void> all_done;
  for (int i = 0; i < kReverseCount; ++i) {
    client.call("test.Echo", "Reverse", std::to_string(i), 10s, {},
                [&, i](Result<std::string> r) {
                  std::lock_guard lock(mu);
                  results.emplace_back(std::to_string(i), std::move(r));
                  if (results.size() == kReverseCount) {
                    all_done.set_value();
                  }
                });
  }
  ASSERT_EQ(all_done.get_future().wait_for(10s), std::future_status::ready);
  std::lock_guard lock(mu);
  EXPECT_EQ(results.front().first, std::to_string(kReverseCount - 1));  // answered last-first
  for (const auto& [expected, r] : results) {
    ASSERT_TRUE(r.has_value()) << r.error().message();
    EXPECT_EQ(*r, expected);
  }
}

TEST_F(TtrpcTest, Deadline_Expires_TimeoutAndServerStaysUsable) {
  Client client = connectClient();
  auto held = client.callSync("test.Echo", "Hold", "", 50ms);
  ASSERT_FALSE(held.has_value());
  EXPECT_TRUE(held.error().is(Errc::kTimeout));
  runOn(server_io_, [&] { held_.front().reply("late"); });  // dropped by the client
  auto out = client.callSync("test.Echo", "Echo", "after", 5s);
  ASSERT_TRUE(out.has_value()) << out.error().message();
  EXPECT_EQ(*out, "after");
}

TEST_F(TtrpcTest, OversizedFrame_ResourceExhaustedThenClose_OtherClientServed) {
  Client good = connectClient();
  UniqueFd raw = rawConnect(path_);
  ASSERT_TRUE(raw.valid());
  // length 4 MiB + 1, stream 1, request; the data never follows.
  writeAll(raw.get(), std::string("\x00\x40\x00\x01\x00\x00\x00\x01\x01\x00", 10));
  std::string wire;
  ASSERT_TRUE(readUntilEof(raw.get(), &wire));
  auto response = firstResponse(wire);
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->status().code(), 8);  // RESOURCE_EXHAUSTED, as ttrpc 1.1 answers
  auto reason = waitClosed();
  ASSERT_TRUE(reason.has_value());
  EXPECT_TRUE(reason->is(Errc::kTooLarge));
  auto out = good.callSync("test.Echo", "Echo", "still here", 5s);
  ASSERT_TRUE(out.has_value()) << out.error().message();
}

TEST_F(TtrpcTest, TruncatedHeaderThenEof_ConnectionClosed_OtherClientServed) {
  Client good = connectClient();
  UniqueFd raw = rawConnect(path_);
  ASSERT_TRUE(raw.valid());
  writeAll(raw.get(), std::string("\x00\x00\x00\x05\x00", 5));
  ASSERT_EQ(::shutdown(raw.get(), SHUT_WR), 0);
  std::string wire;
  ASSERT_TRUE(readUntilEof(raw.get(), &wire));
  EXPECT_TRUE(wire.empty());
  auto reason = waitClosed();
  ASSERT_TRUE(reason.has_value());
  EXPECT_TRUE(reason->is(Errc::kProtocol));
  EXPECT_NE(reason->message().find("partial frame"), std::string::npos);
  EXPECT_TRUE(good.callSync("test.Echo", "Echo", "x", 5s).has_value());
}

TEST_F(TtrpcTest, UnknownMessageType_ConnectionClosed_OtherClientServed) {
  Client good = connectClient();
  UniqueFd raw = rawConnect(path_);
  ASSERT_TRUE(raw.valid());
  writeAll(raw.get(), std::string("\x00\x00\x00\x00\x00\x00\x00\x01\x07\x00", 10));
  std::string wire;
  ASSERT_TRUE(readUntilEof(raw.get(), &wire));
  auto reason = waitClosed();
  ASSERT_TRUE(reason.has_value());
  EXPECT_TRUE(reason->is(Errc::kProtocol));
  EXPECT_NE(reason->message().find("unknown message type 7"), std::string::npos);
  EXPECT_TRUE(good.callSync("test.Echo", "Echo", "x", 5s).has_value());
}

TEST_F(TtrpcTest, UndecodableRequest_InvalidArgumentThenClose) {
  UniqueFd raw = rawConnect(path_);
  ASSERT_TRUE(raw.valid());
  // A request frame whose data is a truncated protobuf (field 1, length 0x7f, no bytes).
  writeAll(raw.get(), std::string("\x00\x00\x00\x02\x00\x00\x00\x01\x01\x00\x0a\x7f", 12));
  std::string wire;
  ASSERT_TRUE(readUntilEof(raw.get(), &wire));
  auto response = firstResponse(wire);
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->status().code(), 3);  // INVALID_ARGUMENT
  auto reason = waitClosed();
  ASSERT_TRUE(reason.has_value());
  EXPECT_TRUE(reason->is(Errc::kProtocol));
}

TEST_F(TtrpcTest, EvenStreamId_InvalidArgument_ConnectionKept) {
  UniqueFd raw = rawConnect(path_);
  ASSERT_TRUE(raw.valid());
  ::ttrpc::Request request;
  request.set_service("test.Echo");
  request.set_method("Echo");
  writeAll(raw.get(), *encodeFrame(2, MessageType::kRequest, request.SerializeAsString()));
  writeAll(raw.get(), *encodeFrame(3, MessageType::kRequest, request.SerializeAsString()));
  ASSERT_EQ(::shutdown(raw.get(), SHUT_WR), 0);
  std::string wire;
  ASSERT_TRUE(readUntilEof(raw.get(), &wire));
  FrameDecoder decoder;
  decoder.feed({reinterpret_cast<const uint8_t*>(wire.data()), wire.size()});
  auto first = decoder.next();
  ASSERT_TRUE(first.has_value() && first->has_value());
  EXPECT_EQ((*first)->header.stream_id, 2u);
  ::ttrpc::Response response;
  ASSERT_TRUE(response.ParseFromString((*first)->payload));
  EXPECT_EQ(response.status().code(), 3);
}

TEST_F(TtrpcTest, ServerStop_PendingCall_ClientGetsUnavailable) {
  Client client = connectClient();
  std::promise<Result<std::string>> result;
  client.call("test.Echo", "Hold", "", kNoTimeout, {},
              [&](Result<std::string> r) { result.set_value(std::move(r)); });
  auto future = result.get_future();
  for (int i = 0; i < 500; ++i) {  // until the server holds the call
    bool held = false;
    runOn(server_io_, [&] { held = hold_calls_ == 1; });
    if (held) {
      break;
    }
    std::this_thread::sleep_for(10ms);
  }
  runOn(server_io_, [&] { server_->stop(); });
  ASSERT_EQ(future.wait_for(5s), std::future_status::ready);
  auto r = future.get();
  ASSERT_FALSE(r.has_value());
  EXPECT_TRUE(r.error().is(Errc::kUnavailable));
  EXPECT_FALSE(std::filesystem::exists(path_));
}

TEST_F(TtrpcTest, ServeFd_Socketpair_Works) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  UniqueFd server_end(fds[0]);
  UniqueFd client_end(fds[1]);
  runOn(server_io_, [&] { ASSERT_TRUE(server_->serveFd(std::move(server_end)).has_value()); });
  auto client = Client::fromFd(client_io_.context(), std::move(client_end));
  ASSERT_TRUE(client.has_value());
  auto out = client->callSync("test.Echo", "Echo", "pair", 5s);
  ASSERT_TRUE(out.has_value()) << out.error().message();
  EXPECT_EQ(*out, "pair");
}

TEST_F(TtrpcTest, Listen_SocketMode0600_AndLiveSocketRefused) {
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::optional<Result<void>> second;
  runOn(server_io_, [&] {
    Server other(server_io_.context());
    second = other.listen(path_);
  });
  ASSERT_FALSE(second->has_value());
  EXPECT_TRUE(second->error().is(Errc::kAlreadyExists));
}

TEST_F(TtrpcTest, Listen_StaleSocketFile_Replaced) {
  const std::string stale = dir_ + "/stale.sock";
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  stale.copy(addr.sun_path, stale.size());
  ASSERT_EQ(::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)), 0);
  fd.reset();  // bound, never listened: a crashed server's leftover
  std::optional<Result<void>> listened;
  runOn(server_io_, [&] { listened = server_->listen(stale); });
  ASSERT_TRUE(listened->has_value()) << listened->error().message();
  auto client = Client::connect(client_io_.context(), stale);
  ASSERT_TRUE(client.has_value());
  EXPECT_TRUE(client->callSync("test.Echo", "Echo", "x", 5s).has_value());
}

TEST_F(TtrpcTest, InFlightCap_StopsReadingUntilAnswered) {
  runOn(server_io_, [&] { server_.reset(); });
  startServer(ServerOptions{.max_in_flight_per_connection = 2});
  Client client = connectClient();
  std::promise<Result<std::string>> third;
  client.call("test.Echo", "Hold", "", kNoTimeout, {}, [](Result<std::string>) {});
  client.call("test.Echo", "Hold", "", kNoTimeout, {}, [](Result<std::string>) {});
  client.call("test.Echo", "Echo", "3rd", kNoTimeout, {},
              [&](Result<std::string> r) { third.set_value(std::move(r)); });
  auto future = third.get_future();
  EXPECT_EQ(future.wait_for(200ms), std::future_status::timeout);  // not read while at cap
  runOn(server_io_, [&] { held_.front().reply("one"); });
  ASSERT_EQ(future.wait_for(5s), std::future_status::ready);
  auto r = future.get();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, "3rd");
}

TEST_F(TtrpcTest, ClientClosedByPeer_PendingCallsUnavailable) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  UniqueFd peer(fds[0]);
  auto client = Client::fromFd(client_io_.context(), UniqueFd(fds[1]));
  ASSERT_TRUE(client.has_value());
  std::promise<Result<std::string>> result;
  client->call("s", "m", "", kNoTimeout, {},
               [&](Result<std::string> r) { result.set_value(std::move(r)); });
  char buf[64];
  ASSERT_GT(::read(peer.get(), buf, sizeof(buf)), 0);  // the request arrived
  peer.reset();
  auto future = result.get_future();
  ASSERT_EQ(future.wait_for(5s), std::future_status::ready);
  auto r = future.get();
  ASSERT_FALSE(r.has_value());
  EXPECT_TRUE(r.error().is(Errc::kUnavailable));
}

}  // namespace
}  // namespace nv::ttrpc
