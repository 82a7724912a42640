// SPDX-License-Identifier: Apache-2.0
// Task events to containerd: each event is wrapped in an Envelope and sent with
// containerd.services.events.ttrpc.v1.Events/Forward over the ttrpc socket in $TTRPC_ADDRESS,
// from one ordered queue on its own thread (an RPC never waits for containerd). Failed sends
// are retried (5 attempts, 1 s apart), then dropped with a log line, as containerd's shims do.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "proto/containerd_shim.pb.h"

namespace nv::shim {

namespace cpb = nanovisor::containerd;

// Now as a protobuf Timestamp.
[[nodiscard]] cpb::Timestamp nowTimestamp();

// The serialized ForwardRequest for one event (bare type URL, e.g. containerd.events.TaskExit).
[[nodiscard]] std::string forwardRequest(const std::string& namespace_name,
                                         const std::string& topic, const std::string& type_url,
                                         const std::string& event_bytes,
                                         const cpb::Timestamp& when);

class EventPublisher {
 public:
  // `ttrpc_address`: a socket path, optionally with unix://; empty disables publishing.
  EventPublisher(std::string ttrpc_address, std::string namespace_name);
  ~EventPublisher();  // sends what is queued (bounded by the retry policy), then stops
  EventPublisher(const EventPublisher&) = delete;
  EventPublisher& operator=(const EventPublisher&) = delete;

  void publish(const std::string& topic, const std::string& type_url,
               const google::protobuf::MessageLite& event);

 private:
  void run();

  std::string address_;
  std::string namespace_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;  // serialized ForwardRequests
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace nv::shim
