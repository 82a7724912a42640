// SPDX-License-Identifier: Apache-2.0
// Asio loop for virtio queue processing.
#include "vmm/devices/virtio/device_loop.h"

#include <pthread.h>

#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>

namespace nv::vmm {

struct DeviceLoop::Watch {
  Watch(boost::asio::io_context& io, int fd, std::function<void()> cb)
      : descriptor(io, ::dup(fd)), on_event(std::move(cb)) {}
  boost::asio::posix::stream_descriptor descriptor;
  std::function<void()> on_event;
};

DeviceLoop::DeviceLoop() = default;

DeviceLoop::~DeviceLoop() { stop(); }

void DeviceLoop::watch(int fd, std::function<void()> on_event) {
  auto w = std::make_shared<Watch>(io_, fd, std::move(on_event));
  watches_.push_back(w);
  arm(w);
}

void DeviceLoop::arm(const std::shared_ptr<Watch>& w) {
  w->descriptor.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                           [this, w](const boost::system::error_code& error) {
                             if (error) {
                               return;
                             }
                             uint64_t count = 0;
                             // Drain the eventfd counter (it is non-blocking-safe: readable).
                             [[maybe_unused]] ssize_t n =
                                 ::read(w->descriptor.native_handle(), &count, sizeof(count));
                             w->on_event();
                             arm(w);
                           });
}

void DeviceLoop::start(std::function<void()> on_thread_start) {
  if (started_) {
    return;
  }
  started_ = true;
  thread_ = std::thread([this, hook = std::move(on_thread_start)] {
    ::pthread_setname_np(::pthread_self(), "nv-devices");
    if (hook) {
      hook();
    }
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard(
        io_.get_executor());
    io_.run();
  });
}

void DeviceLoop::stop() {
  io_.stop();
  if (thread_.joinable()) {
    thread_.join();
  }
}

}  // namespace nv::vmm
