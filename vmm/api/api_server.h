// SPDX-License-Identifier: Apache-2.0
// ApiServer: the control API of nanovisor-vmm (proto/vmm_api.proto, service
// "nanovisor.vmm.v1.Vmm") served with common/ttrpc on a Unix socket, on its own Asio thread.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "common/result.h"
#include "vmm/vmm.h"

namespace nv::vmm::api {

inline constexpr const char* kService = "nanovisor.vmm.v1.Vmm";

// Listens on `path` (0600; a stale socket is replaced, a live one refused) and serves until
// destroyed; the socket file is removed then. The Vmm must outlive the server.
// `on_thread_start` runs first on the server thread, before it accepts a client (nanovisor-vmm
// installs the thread's seccomp filter there).
class ApiServer {
 public:
  [[nodiscard]] static Result<std::unique_ptr<ApiServer>> start(
      Vmm& vmm, const std::string& path, std::function<void()> on_thread_start = {});
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

 private:
  struct State;
  explicit ApiServer(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace nv::vmm::api
