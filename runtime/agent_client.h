// SPDX-License-Identifier: Apache-2.0
// AgentClient: typed calls to nanovisor-agent (proto/agent.proto) over a ttrpc connection.
// Thread-safe: calls may run concurrently from several threads (one connection, many streams).
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include "common/result.h"
#include "common/unique_fd.h"
#include "proto/agent.pb.h"

namespace nv::runtime {

// The transport under AgentClient: one ttrpc connection.
class AgentTransport {
 public:
  virtual ~AgentTransport() = default;
  // Sends one request to service nanovisor.agent.v1.AgentService; returns the response bytes.
  [[nodiscard]] virtual Result<std::string> call(const std::string& method,
                                                 const std::string& payload,
                                                 std::chrono::milliseconds timeout) = 0;
  // Closes the connection: pending and later calls fail with Errc::kUnavailable.
  virtual void close() = 0;
};

// A connected Unix stream socket.
[[nodiscard]] Result<UniqueFd> connectUnixSocket(const std::filesystem::path& path);
// The ttrpc transport over a connected stream socket.
[[nodiscard]] std::unique_ptr<AgentTransport> makeUnixTransport(UniqueFd fd);

class AgentClient {
 public:
  explicit AgentClient(std::unique_ptr<AgentTransport> transport)
      : transport_(std::move(transport)) {}

  // Connects to the agent's channel socket, retrying until it exists, up to `timeout`. The
  // guest may still be booting: the first call waits in the channel until the agent reads it,
  // so the caller's first real request doubles as the handshake (no Health round trip).
  [[nodiscard]] static Result<std::unique_ptr<AgentClient>> connect(
      const std::filesystem::path& socket, std::chrono::milliseconds timeout);

  // A typed call: Resp for Req, with `timeout` (default 30 s; blocking calls pass longer).
  void close() { transport_->close(); }

  // The raw call, for proxies that forward payloads they do not parse.
  [[nodiscard]] Result<std::string> callRaw(const std::string& method, const std::string& payload,
                                            std::chrono::milliseconds timeout) {
    return transport_->call(method, payload, timeout);
  }

  template <class Resp, class Req>
  [[nodiscard]] Result<Resp> call(const std::string& method, const Req& request,
                                  std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    NV_ASSIGN_OR_RETURN(std::string bytes, transport_->call(method, request.SerializeAsString(),
                                                            timeout));
    Resp response;
    if (!response.ParseFromString(bytes)) {
      return fail(Errc::kProtocol, "agent: malformed " + method + " response");
    }
    return response;
  }

 private:
  std::unique_ptr<AgentTransport> transport_;
};

inline constexpr const char* kAgentService = "nanovisor.agent.v1.AgentService";

}  // namespace nv::runtime
