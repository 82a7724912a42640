// SPDX-License-Identifier: Apache-2.0
#include "runtime/qmp_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "common/syscall.h"
#include "runtime/agent_client.h"

namespace nv::runtime {
namespace {

constexpr size_t kMaxMessage = 1 << 20;  // QMP replies we use are small; cap what QEMU can send

}  // namespace

Result<QmpClient> QmpClient::connect(const std::filesystem::path& socket,
                                     std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  Result<UniqueFd> fd = fail(Errc::kUnavailable, "no attempt");
  while (!(fd = connectUnixSocket(socket))) {
    if (std::chrono::steady_clock::now() >= deadline) {
      return tl::unexpected(fd.error().wrap("QMP"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  QmpClient client(std::move(*fd));
  NV_ASSIGN_OR_RETURN(auto greeting, client.readMessage(deadline));
  if (!greeting.contains("QMP")) {
    return fail(Errc::kProtocol, "QMP: unexpected greeting " + greeting.dump());
  }
  NV_TRY(client.execute("qmp_capabilities", nullptr, timeout));
  return client;
}

Result<nlohmann::json> QmpClient::execute(const std::string& command,
                                          const nlohmann::json& arguments,
                                          std::chrono::milliseconds timeout, int pass_fd) {
  nlohmann::json request = {{"execute", command}};
  if (!arguments.is_null()) request["arguments"] = arguments;
  std::string line = request.dump() + "\n";
  size_t sent = 0;
  while (sent < line.size()) {
    // The fd travels with the command's first byte.
    ssize_t n = sendWithFd(fd_.get(), line.data() + sent, line.size() - sent,
                           sent == 0 ? pass_fd : -1);
    if (n < 0) return failErrno("QMP send " + command);
    sent += static_cast<size_t>(n);
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    NV_ASSIGN_OR_RETURN(auto reply, readMessage(deadline));
    if (reply.contains("event")) continue;
    if (reply.contains("error")) {
      std::string desc = reply["error"].value("desc", reply["error"].dump());
      return fail(Errc::kProtocol, "QMP " + command + ": " + desc);
    }
    if (reply.contains("return")) return reply["return"];
    return fail(Errc::kProtocol, "QMP " + command + ": unexpected reply " + reply.dump());
  }
}

Result<nlohmann::json> QmpClient::readMessage(std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    if (auto nl = buffer_.find('\n'); nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      auto parsed = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (parsed.is_discarded() || !parsed.is_object()) {
        return fail(Errc::kProtocol, "QMP: malformed message");
      }
      return parsed;
    }
    if (buffer_.size() > kMaxMessage) {
      return fail(Errc::kTooLarge, "QMP: message over 1 MiB");
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return fail(Errc::kTimeout, "QMP: no reply in time");
    pollfd pfd{fd_.get(), POLLIN, 0};
    int ready = retryOnEintr([&] { return ::poll(&pfd, 1, static_cast<int>(left.count())); });
    if (ready < 0) return failErrno("QMP poll");
    if (ready == 0) continue;
    char chunk[4096];
    ssize_t n = retryOnEintr([&] { return ::read(fd_.get(), chunk, sizeof(chunk)); });
    if (n < 0) return failErrno("QMP read");
    if (n == 0) return fail(Errc::kUnavailable, "QMP: QEMU closed the connection");
    buffer_.append(chunk, static_cast<size_t>(n));
  }
}

}  // namespace nv::runtime
