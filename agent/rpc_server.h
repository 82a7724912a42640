// SPDX-License-Identifier: Apache-2.0
// Serves AgentService over ttrpc as "nanovisor.agent.v1.AgentService".
#pragma once

#include <string>

#include "agent/agent_service.h"
#include "common/result.h"
#include "common/unique_fd.h"

namespace nv::agent {

inline constexpr const char* kServiceName = "nanovisor.agent.v1.AgentService";

// Accepts connections on `listener` (Unix or vsock) and serves each until it closes.
// Returns only on a fatal listener error.
[[nodiscard]] Result<void> serveListener(AgentService& service, UniqueFd listener);

// Serves the virtio-serial port at `path`: one host connection at a time; when the host
// side goes away the port is polled until it comes back. Returns only on a fatal error.
[[nodiscard]] Result<void> serveSerialPort(AgentService& service, const std::string& path);

}  // namespace nv::agent
