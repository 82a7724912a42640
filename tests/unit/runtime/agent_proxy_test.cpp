// SPDX-License-Identifier: Apache-2.0
// The agent client and the api.sock proxy: client -> proxy -> a fake
// agent transport, over real Unix sockets.
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <thread>

#include <gtest/gtest.h>

#include "runtime/agent_client.h"
#include "runtime/agent_proxy.h"

namespace nv::runtime {
namespace {

using std::chrono::milliseconds;

// A fake agent: "Echo" returns the payload, "Block" waits until released, "Fail" returns
// NOT_FOUND; anything else UNIMPLEMENTED. Thread-safe like the real transport.
class FakeAgent final : public AgentTransport {
 public:
  Result<std::string> call(const std::string& method, const std::string& payload,
                           milliseconds timeout) override {
    if (method == "Echo") return payload;
    if (method == "Fail") return fail(Errc::kNotFound, "no container " + payload);
    if (method == "Block") {
      std::unique_lock lock(mutex_);
      if (!cv_.wait_for(lock, timeout, [&] { return released_ || closed_; })) {
        return fail(Errc::kTimeout, "blocked");
      }
      if (closed_) return fail(Errc::kUnavailable, "closed");
      return std::string("released");
    }
    return fail(Errc::kUnsupported, "unknown method " + method);
  }
  void close() override {
    std::lock_guard lock(mutex_);
    closed_ = true;
    cv_.notify_all();
  }
  void release() {
    std::lock_guard lock(mutex_);
    released_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool released_ = false;
  bool closed_ = false;
};

class ProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/nv-proxy-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto fake = std::make_unique<FakeAgent>();
    fake_ = fake.get();
    agent_ = std::make_shared<AgentClient>(std::move(fake));
    auto proxy = AgentProxy::start(dir_ / "api.sock", agent_);
    ASSERT_TRUE(proxy) << proxy.error().message();
    proxy_ = std::move(*proxy);
  }
  void TearDown() override {
    agent_->close();
    proxy_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::unique_ptr<AgentClient> client() {
    auto fd = connectUnixSocket(dir_ / "api.sock");
    EXPECT_TRUE(fd);
    return std::make_unique<AgentClient>(makeUnixTransport(std::move(*fd)));
  }

  std::filesystem::path dir_;
  FakeAgent* fake_ = nullptr;
  std::shared_ptr<AgentClient> agent_;
  std::unique_ptr<AgentProxy> proxy_;
};

TEST_F(ProxyTest, RoundTrip_PayloadAndErrorsCrossTheProxy) {
  auto c = client();
  EXPECT_EQ(c->callRaw("Echo", "ping", milliseconds(5000)).value(), "ping");
  auto failed = c->callRaw("Fail", "abc", milliseconds(5000));
  ASSERT_FALSE(failed);
  EXPECT_TRUE(failed.error().is(Errc::kNotFound));
  EXPECT_EQ(failed.error().message(), "no container abc");
  auto unknown = c->callRaw("Nope", "", milliseconds(5000));
  ASSERT_FALSE(unknown);
  EXPECT_TRUE(unknown.error().is(Errc::kUnsupported));
}

TEST_F(ProxyTest, HundredConcurrentCalls_OneConnection_AllAnswered) {
  auto c = client();
  std::vector<std::future<Result<std::string>>> calls;
  for (int i = 0; i < 100; ++i) {
    calls.push_back(std::async(std::launch::async, [&c, i] {
      return c->callRaw("Echo", "call-" + std::to_string(i), milliseconds(10000));
    }));
  }
  for (int i = 0; i < 100; ++i) {
    auto r = calls[static_cast<size_t>(i)].get();
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(*r, "call-" + std::to_string(i));
  }
}

TEST_F(ProxyTest, BlockedCall_DoesNotHoldUpOthers) {
  auto c = client();
  auto blocked = std::async(std::launch::async,
                            [&c] { return c->callRaw("Block", "", milliseconds(10000)); });
  EXPECT_EQ(c->callRaw("Echo", "still served", milliseconds(5000)).value(), "still served");
  fake_->release();
  EXPECT_EQ(blocked.get().value(), "released");
}

TEST_F(ProxyTest, Deadline_ClientTimesOutAndConnectionStaysUsable) {
  auto c = client();
  auto late = c->callRaw("Block", "", milliseconds(100));
  ASSERT_FALSE(late);
  EXPECT_TRUE(late.error().is(Errc::kTimeout));
  EXPECT_EQ(c->callRaw("Echo", "after", milliseconds(5000)).value(), "after");
}

TEST_F(ProxyTest, GarbageClient_IsDroppedOthersKeepWorking) {
  auto good = client();
  auto fd = connectUnixSocket(dir_ / "api.sock");
  ASSERT_TRUE(fd);
  const char garbage[] = "\x00\x00\x00\x03\x00\x00\x00\x01\x01\x00\xff\xff\xff";
  ASSERT_EQ(::write(fd->get(), garbage, 13), 13);
  char byte = 0;
  EXPECT_EQ(::read(fd->get(), &byte, 1), 0) << "the proxy should close a garbage connection";
  EXPECT_EQ(good->callRaw("Echo", "fine", milliseconds(5000)).value(), "fine");
}

TEST_F(ProxyTest, AgentClosed_PendingCallFailsUnavailable) {
  auto c = client();
  auto blocked = std::async(std::launch::async,
                            [&c] { return c->callRaw("Block", "", milliseconds(10000)); });
  std::this_thread::sleep_for(milliseconds(50));
  agent_->close();
  auto r = blocked.get();
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().is(Errc::kUnavailable)) << r.error().message();
}

}  // namespace
}  // namespace nv::runtime
