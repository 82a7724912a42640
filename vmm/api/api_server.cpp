// SPDX-License-Identifier: Apache-2.0
// Control API handlers: parse, validate, act on the Vmm, answer.
#include "vmm/api/api_server.h"

#include <pthread.h>
#include <unistd.h>

#include <fstream>
#include <optional>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fmt/format.h>

#include "common/logging.h"
#include "common/ttrpc/channel.h"  // NV_ASIO_BEGIN/END
#include "common/ttrpc/server.h"
#include "proto/vmm_api.pb.h"
#include "vmm/api/api_validate.h"

namespace nv::vmm::api {
namespace {

namespace asio = boost::asio;
namespace pb = nanovisor::vmm::v1;
using std::chrono::milliseconds;

// How long Pause waits for every vCPU to leave KVM_RUN (a kick takes microseconds).
constexpr milliseconds kPauseTimeout{5000};

pb::VmState toProto(VmState state) {
  switch (state) {
    case VmState::kRunning:
      return pb::VM_STATE_RUNNING;
    case VmState::kPaused:
      return pb::VM_STATE_PAUSED;
    case VmState::kStopping:
      return pb::VM_STATE_STOPPING;
  }
  return pb::VM_STATE_UNSPECIFIED;
}

uint64_t selfRssBytes() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) {
      return std::stoull(line.substr(6)) * 1024;
    }
  }
  return 0;
}

}  // namespace

struct ApiServer::State {
  explicit State(Vmm& v) : vmm(v), work(io.get_executor()), server(io) {}

  // Parses Req, runs fn(req) -> Result<Resp>, answers.
  template <class Req, class Fn>
  void handle(const std::string& method, Fn fn) {
    server.registerHandler(kService, method, [fn, method](ttrpc::Call call,
                                                          ttrpc::Responder responder) {
      Req req;
      if (!req.ParseFromString(call.payload)) {
        responder.fail({ttrpc::StatusCode::kInvalidArgument,
                        fmt::format("{}: cannot parse the request", method)});
        return;
      }
      auto resp = fn(req);
      if (!resp) {
        log::get("api")->warn("{}: {}", method, resp.error().message());
        responder.fail(ttrpc::errorToStatus(resp.error()));
        return;
      }
      responder.reply(resp->SerializeAsString());
    });
  }

  void registerAll();

  Vmm& vmm;
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work;
  ttrpc::Server server;
  std::optional<asio::steady_timer> shutdown_timer;
  std::thread thread;
};

void ApiServer::State::registerAll() {
  handle<pb::DescribeRequest>("Describe", [this](const pb::DescribeRequest&)
                                              -> Result<pb::DescribeResponse> {
    pb::DescribeResponse resp;
    const VmConfig& config = vmm.config();
    resp.set_version("nanovisor-vmm 0.1.0");
    resp.set_cpus(config.cpus);
    resp.set_memory_mib(config.memory_mib);
    resp.set_kernel(config.kernel);
    resp.set_cmdline(vmm.guestCmdline());
    for (const auto& disk : vmm.disks()) {
      pb::DiskInfo* info = resp.add_disks();
      info->set_index(disk.index);
      info->set_path(disk.path);
      info->set_read_only(disk.read_only);
      info->set_capacity_sectors(disk.capacity_sectors);
      info->set_id(disk.id);
    }
    if (config.vsock_uds) {
      resp.set_vsock_uds(*config.vsock_uds);
      resp.set_guest_cid(kGuestCid);
    }
    resp.set_state(toProto(vmm.state()));
    resp.set_pid(::getpid());
    resp.set_rng(vmm.hasRng());
    const auto macs = vmm.netMacs();
    for (size_t i = 0; i < config.nets.size() && i < macs.size(); ++i) {
      const NetConfig& net = config.nets[i];
      pb::NetInfo* info = resp.add_nets();
      info->set_index(static_cast<uint32_t>(i));
      info->set_tap(net.tap);
      info->set_tap_fd(net.fd.value_or(-1));
      info->set_mac(macs[i]);
      if (net.limit.bytes.limited()) info->set_bps(formatRateLimit(net.limit.bytes));
      if (net.limit.ops.limited()) info->set_pps(formatRateLimit(net.limit.ops));
    }
    return resp;
  });
  handle<pb::PauseRequest>("Pause", [this](const pb::PauseRequest&) -> Result<pb::PauseResponse> {
    NV_TRY(vmm.pauseAndWait(kPauseTimeout));
    log::get("api")->info("VM paused");
    return pb::PauseResponse{};
  });
  handle<pb::ResumeRequest>("Resume",
                            [this](const pb::ResumeRequest&) -> Result<pb::ResumeResponse> {
                              NV_TRY(vmm.resumeChecked());
                              log::get("api")->info("VM resumed");
                              return pb::ResumeResponse{};
                            });
  handle<pb::ShutdownRequest>("Shutdown", [this](const pb::ShutdownRequest& req)
                                              -> Result<pb::ShutdownResponse> {
    NV_ASSIGN_OR_RETURN(milliseconds deadline, shutdownDeadline(req.deadline_ms()));
    vmm.requestShutdown();
    log::get("api")->info("shutdown: Ctrl-Alt-Del sent, deadline {} ms", deadline.count());
    if (!shutdown_timer) {  // a second Shutdown keeps the first deadline
      shutdown_timer.emplace(io, deadline);
      shutdown_timer->async_wait([this, deadline](const boost::system::error_code& ec) {
        if (!ec) {
          vmm.stop(StopReason::kHost, 0,
                   fmt::format("the guest did not reboot within {} ms of Ctrl-Alt-Del; stopped",
                               deadline.count()));
        }
      });
    }
    return pb::ShutdownResponse{};
  });
  handle<pb::KillRequest>("Kill", [this](const pb::KillRequest&) -> Result<pb::KillResponse> {
    // Answer first: the stop runs after the reply has been handed to the socket.
    NV_ASIO_BEGIN
    asio::post(io, [this] { vmm.stop(StopReason::kHost, 0, "killed through the control API"); });
    NV_ASIO_END
    return pb::KillResponse{};
  });
  handle<pb::ReplaceDiskMediaRequest>(
      "ReplaceDiskMedia",
      [this](const pb::ReplaceDiskMediaRequest& req) -> Result<pb::ReplaceDiskMediaResponse> {
        NV_ASSIGN_OR_RETURN(uint64_t capacity,
                            vmm.replaceDiskMedia(req.index(), req.path(), req.read_only()));
        pb::ReplaceDiskMediaResponse resp;
        resp.set_capacity_sectors(capacity);
        return resp;
      });
  handle<pb::StatsRequest>("Stats", [this](const pb::StatsRequest&) -> Result<pb::StatsResponse> {
    VmCounters c = vmm.counters();
    pb::StatsResponse resp;
    resp.set_state(toProto(c.state));
    resp.set_uptime_us(static_cast<uint64_t>(c.uptime.count()));
    for (uint64_t exits : c.vcpu_exits) {
      resp.add_vcpu_exits(exits);
    }
    for (const auto& d : c.disks) {
      pb::DiskStats* disk = resp.add_disks();
      disk->set_index(d.index);
      disk->set_requests(d.requests);
      disk->set_read_bytes(d.read_bytes);
      disk->set_write_bytes(d.write_bytes);
      disk->set_bad_requests(d.bad_requests);
      disk->set_queue_errors(d.queue_errors);
      disk->set_media_changes(d.media_changes);
      disk->set_throttled(d.throttled);
    }
    for (const auto& n : c.nets) {
      pb::NetStats* net = resp.add_nets();
      net->set_index(n.index);
      net->set_tx_frames(n.tx_frames);
      net->set_tx_bytes(n.tx_bytes);
      net->set_rx_frames(n.rx_frames);
      net->set_rx_bytes(n.rx_bytes);
      net->set_tx_dropped(n.tx_dropped);
      net->set_rx_dropped(n.rx_dropped);
      net->set_bad_rx_buffers(n.bad_rx_buffers);
      net->set_tap_errors(n.tap_errors);
      net->set_queue_errors(n.queue_errors);
      net->set_tx_throttled(n.tx_throttled);
      net->set_rx_throttled(n.rx_throttled);
    }
    resp.set_virtio_violations(c.virtio_violations);
    resp.set_unhandled_accesses(c.unhandled_accesses);
    resp.set_rng_bytes(c.rng_bytes);
    resp.set_vmm_rss_bytes(selfRssBytes());
    if (c.boot_time) {
      resp.set_boot_time_us(static_cast<uint64_t>(c.boot_time->count()));
    }
    return resp;
  });
}

Result<std::unique_ptr<ApiServer>> ApiServer::start(Vmm& vmm, const std::string& path,
                                                    std::function<void()> on_thread_start) {
  auto state = std::make_unique<State>(vmm);
  state->registerAll();
  if (auto listening = state->server.listen(path, 0600); !listening) {
    return tl::unexpected(listening.error().wrap("--api-sock"));
  }
  State* raw = state.get();
  state->thread = std::thread([raw, hook = std::move(on_thread_start)] {
    ::pthread_setname_np(::pthread_self(), "nv-api");
    if (hook) {
      hook();
    }
    raw->io.run();
  });
  return std::unique_ptr<ApiServer>(new ApiServer(std::move(state)));
}

ApiServer::ApiServer(std::unique_ptr<State> state) : state_(std::move(state)) {}

ApiServer::~ApiServer() {
  State* raw = state_.get();
  NV_ASIO_BEGIN
  asio::post(raw->io, [raw] {
    if (raw->shutdown_timer) {
      raw->shutdown_timer->cancel();
    }
    raw->server.stop();
    raw->work.reset();
  });
  NV_ASIO_END
  if (raw->thread.joinable()) {
    raw->thread.join();
  }
}

}  // namespace nv::vmm::api
