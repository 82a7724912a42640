// SPDX-License-Identifier: Apache-2.0
#include "shim/events.h"

#include <chrono>
#include <future>
#include <optional>

#include "common/logging.h"
#include "common/ttrpc/channel.h"
#include "common/ttrpc/client.h"

namespace nv::shim {
namespace {

constexpr const char* kEventsService = "containerd.services.events.ttrpc.v1.Events";
constexpr int kAttempts = 5;

}  // namespace

cpb::Timestamp nowTimestamp() {
  auto now = std::chrono::system_clock::now().time_since_epoch();
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now).count();
  cpb::Timestamp ts;
  ts.set_seconds(ns / 1000000000);
  ts.set_nanos(static_cast<int32_t>(ns % 1000000000));
  return ts;
}

std::string forwardRequest(const std::string& namespace_name, const std::string& topic,
                           const std::string& type_url, const std::string& event_bytes,
                           const cpb::Timestamp& when) {
  cpb::ForwardRequest request;
  auto* envelope = request.mutable_envelope();
  *envelope->mutable_timestamp() = when;
  envelope->set_namespace_(namespace_name);
  envelope->set_topic(topic);
  envelope->mutable_event()->set_type_url(type_url);
  envelope->mutable_event()->set_value(event_bytes);
  return request.SerializeAsString();
}

EventPublisher::EventPublisher(std::string ttrpc_address, std::string namespace_name)
    : address_(std::move(ttrpc_address)), namespace_(std::move(namespace_name)) {
  if (address_.rfind("unix://", 0) == 0) address_ = address_.substr(7);
  if (!address_.empty()) thread_ = std::thread([this] { run(); });
}

EventPublisher::~EventPublisher() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void EventPublisher::publish(const std::string& topic, const std::string& type_url,
                             const google::protobuf::MessageLite& event) {
  if (address_.empty()) return;
  std::string bytes = forwardRequest(namespace_, topic, type_url, event.SerializeAsString(),
                                     nowTimestamp());
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(bytes));
  }
  cv_.notify_all();
}

void EventPublisher::run() {
  auto logger = log::get("shim");
  ttrpc::IoThread io;
  std::optional<ttrpc::Client> client;
  for (;;) {
    std::string next;
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) break;  // stopping and drained
      next = queue_.front();
    }
    bool sent = false;
    for (int attempt = 0; attempt < kAttempts && !sent; ++attempt) {
      if (attempt > 0) {
        std::unique_lock lock(mutex_);
        // Back off 1 s, but only while not stopping: at exit one attempt more is enough.
        if (!stopping_) cv_.wait_for(lock, std::chrono::seconds(1));
      }
      if (!client) {
        auto connected = ttrpc::Client::connect(io.context(), address_);
        if (!connected) {
          logger->warn("events: connect {}: {}", address_, connected.error().message());
          continue;
        }
        client.emplace(std::move(*connected));
      }
      auto done = client->callSync(kEventsService, "Forward", next, std::chrono::seconds(5),
                                   {{"containerd-namespace-ttrpc", namespace_}});
      if (done) {
        sent = true;
      } else {
        logger->warn("events: Forward: {}", done.error().message());
        client.reset();
      }
    }
    if (!sent) logger->error("events: dropped one event after {} attempts", kAttempts);
    std::lock_guard lock(mutex_);
    queue_.pop_front();
  }
  client.reset();
  // Let the loop run the close and the cancelled operations it queues before IoThread stops
  // it (otherwise the connection's state is never freed): a marker that posts a marker.
  std::promise<void> drained;
  ttrpc::detail::postTo(io.context(), [&] {
    ttrpc::detail::postTo(io.context(), [&] { drained.set_value(); });
  });
  drained.get_future().wait();
}

}  // namespace nv::shim
