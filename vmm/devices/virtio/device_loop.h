// SPDX-License-Identifier: Apache-2.0
// DeviceLoop: the Asio event loop thread on which virtio queues are processed, woken by the
// ioeventfds KVM signals when the guest writes QueueNotify.
#pragma once

#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include "common/event_fd.h"
#include "common/result.h"

namespace nv::vmm {

// Owns one thread running an io_context. watch() registers an eventfd and a callback run on
// the loop thread each time it fires. Devices post their own work with post().
class DeviceLoop {
 public:
  DeviceLoop();
  ~DeviceLoop();
  DeviceLoop(const DeviceLoop&) = delete;
  DeviceLoop& operator=(const DeviceLoop&) = delete;

  // Calls `on_event` on the loop thread whenever `fd` (an eventfd) becomes readable; the
  // counter is drained first. `fd` must outlive the loop.
  void watch(int fd, std::function<void()> on_event);
  // Starts the loop thread; `on_thread_start` runs first on it (nanovisor-vmm installs the
  // thread's seccomp filter there).
  void start(std::function<void()> on_thread_start = {});
  void stop();
  [[nodiscard]] boost::asio::io_context& context() { return io_; }

 private:
  struct Watch;
  void arm(const std::shared_ptr<Watch>& watch);

  boost::asio::io_context io_;
  std::vector<std::shared_ptr<Watch>> watches_;
  std::thread thread_;
  bool started_ = false;
};

}  // namespace nv::vmm
