// SPDX-License-Identifier: Apache-2.0
// The Task service over real ttrpc sockets, up to the point where a VM would boot: Create
// (bundle + rootfs directory -> EROFS disk), State, Wait, Kill of a created task, Delete,
// Shutdown, the answers of Exec/Stats/Pause/Resume/ResizePty/Update/Checkpoint before the VM
// runs, and the events containerd receives through Forward.
// Booting and running a workload is covered by tests/e2e/shim with a real containerd.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>

#include <gtest/gtest.h>

#include "common/ttrpc/channel.h"
#include "common/ttrpc/client.h"
#include "common/ttrpc/server.h"
#include "shim/events.h"
#include "shim/task_service.h"

namespace nv::shim {
namespace {

using namespace std::chrono_literals;

template <class F>
void runOn(ttrpc::IoThread& io, F fn) {
  std::promise<void> done;
  ttrpc::detail::postTo(io.context(), [&] {
    fn();
    done.set_value();
  });
  done.get_future().wait();
}

class TaskServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access("/usr/bin/mkfs.erofs", X_OK) != 0) {
      GTEST_SKIP() << "mkfs.erofs (erofs-utils) is not installed";
    }
    char tmpl[] = "/tmp/nv-shim-task-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    bundle_ = dir_ + "/bundle";
    std::filesystem::create_directories(bundle_ + "/rootfs/bin");
    std::ofstream(bundle_ + "/rootfs/bin/hello") << "hi\n";
    std::ofstream(bundle_ + "/config.json") << R"({"process": {"args": ["sh", "-c", "exit 7"],
        "cwd": "/", "user": {"uid": 0, "gid": 0}}, "root": {"path": "rootfs"}})";

    // containerd's side of events: a Forward server that records topics.
    runOn(events_io_, [&] {
      events_server_.emplace(events_io_.context());
      events_server_->registerHandler(
          "containerd.services.events.ttrpc.v1.Events", "Forward",
          [this](ttrpc::Call call, ttrpc::Responder responder) {
            cpb::ForwardRequest request;
            if (request.ParseFromString(call.payload)) {
              std::lock_guard lock(mutex_);
              topics_.push_back(request.envelope().topic());
              namespaces_.push_back(request.envelope().namespace_());
            }
            responder.reply("");
          });
      ASSERT_TRUE(events_server_->listen(dir_ + "/events.sock").has_value());
    });
    events_.emplace("unix://" + dir_ + "/events.sock", "testns");

    runtime::RuntimeConfig config;
    config.image_root = dir_ + "/images";
    config.state_dir = dir_ + "/state";
    service_.emplace(TaskServiceOptions{.namespace_name = "testns",
                                        .runtime = config,
                                        .sandbox_state_dir = dir_ + "/state-shim/testns",
                                        .on_shutdown = [this] { shutdown_called_ = true; }},
                     *events_);
    runOn(server_io_, [&] {
      server_.emplace(server_io_.context());
      service_->registerOn(*server_);
      ASSERT_TRUE(server_->listen(dir_ + "/shim.sock").has_value());
    });
    auto client = ttrpc::Client::connect(client_io_.context(), dir_ + "/shim.sock");
    ASSERT_TRUE(client.has_value()) << client.error().message();
    client_.emplace(std::move(*client));
  }

  void TearDown() override {
    if (dir_.empty()) return;
    client_.reset();
    runOn(server_io_, [&] { server_.reset(); });
    service_.reset();
    events_.reset();  // flushes queued events
    runOn(events_io_, [&] { events_server_.reset(); });
    std::filesystem::remove_all(dir_);
  }

  template <class Resp, class Req>
  Result<Resp> call(const std::string& method, const Req& request) {
    return client_->callTyped<Resp>(kTaskService, method, request, 60s);
  }

  Result<cpb::CreateTaskResponse> create() {
    cpb::CreateTaskRequest request;
    request.set_id("t1");
    request.set_bundle(bundle_);
    return call<cpb::CreateTaskResponse>("Create", request);
  }

  cpb::StateResponse state() {
    cpb::StateRequest request;
    request.set_id("t1");
    auto s = call<cpb::StateResponse>("State", request);
    EXPECT_TRUE(s.has_value()) << s.error().message();
    return s ? *s : cpb::StateResponse();
  }

  std::vector<std::string> topics() {
    std::lock_guard lock(mutex_);
    return topics_;
  }

  std::string dir_;
  std::string bundle_;
  ttrpc::IoThread events_io_;
  ttrpc::IoThread server_io_;
  ttrpc::IoThread client_io_;
  std::optional<ttrpc::Server> events_server_;
  std::optional<EventPublisher> events_;
  std::optional<TaskService> service_;
  std::optional<ttrpc::Server> server_;
  std::optional<ttrpc::Client> client_;
  std::atomic<bool> shutdown_called_{false};
  std::mutex mutex_;
  std::vector<std::string> topics_;
  std::vector<std::string> namespaces_;
};

TEST_F(TaskServiceTest, Create_BuildsRootfsAndReportsCreatedWithPidZero) {
  auto created = create();
  ASSERT_TRUE(created.has_value()) << created.error().message();
  EXPECT_EQ(created->pid(), 0u);
  auto s = state();
  EXPECT_EQ(s.status(), cpb::CREATED);
  EXPECT_EQ(s.bundle(), bundle_);
  EXPECT_FALSE(s.has_exited_at());
  // The rootfs directory became a cached EROFS disk in the image store.
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/images/rootfs/snapshots"));
}

TEST_F(TaskServiceTest, SecondCreate_IsAlreadyExists) {
  ASSERT_TRUE(create().has_value());
  auto again = create();
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(ttrpc::statusCode(again.error()), 6);  // ALREADY_EXISTS
}

TEST_F(TaskServiceTest, CreateWithMissingBundle_FailsWithReason) {
  cpb::CreateTaskRequest request;
  request.set_id("t1");
  request.set_bundle(dir_ + "/nope");
  auto created = call<cpb::CreateTaskResponse>("Create", request);
  ASSERT_FALSE(created.has_value());
  EXPECT_NE(created.error().message().find("config.json"), std::string::npos);
}

TEST_F(TaskServiceTest, KillCreated_StopsIt_WaitAnswers_DeleteReports_ShutdownExits) {
  ASSERT_TRUE(create().has_value());
  // Wait before the exit (as ctr does): answered when the task stops.
  std::promise<Result<std::string>> waited;
  cpb::WaitRequest wait;
  wait.set_id("t1");
  client_->call(kTaskService, "Wait", wait.SerializeAsString(), 0ns, {},
                [&](Result<std::string> r) { waited.set_value(std::move(r)); });

  // Shutdown while the task exists keeps the shim running.
  cpb::ShutdownRequest shutdown;
  shutdown.set_id("t1");
  ASSERT_TRUE(call<cpb::Empty>("Shutdown", shutdown).has_value());
  EXPECT_FALSE(shutdown_called_);

  cpb::KillRequest kill;
  kill.set_id("t1");
  kill.set_signal(9);
  ASSERT_TRUE(call<cpb::Empty>("Kill", kill).has_value());
  auto w = waited.get_future().get();
  ASSERT_TRUE(w.has_value()) << w.error().message();
  cpb::WaitResponse wr;
  ASSERT_TRUE(wr.ParseFromString(*w));
  EXPECT_EQ(wr.exit_status(), 137u);
  EXPECT_GT(wr.exited_at().seconds(), 0);
  EXPECT_EQ(state().status(), cpb::STOPPED);

  // A second kill: the process is gone (NOT_FOUND, which CRI's stop paths expect).
  auto again = call<cpb::Empty>("Kill", kill);
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(ttrpc::statusCode(again.error()), 5);

  cpb::DeleteRequest del;
  del.set_id("t1");
  auto deleted = call<cpb::DeleteResponse>("Delete", del);
  ASSERT_TRUE(deleted.has_value()) << deleted.error().message();
  EXPECT_EQ(deleted->exit_status(), 137u);

  cpb::StateRequest st;
  st.set_id("t1");
  auto gone = call<cpb::StateResponse>("State", st);
  ASSERT_FALSE(gone.has_value());
  EXPECT_EQ(ttrpc::statusCode(gone.error()), 5);

  ASSERT_TRUE(call<cpb::Empty>("Shutdown", shutdown).has_value());
  EXPECT_TRUE(shutdown_called_);

  events_.reset();  // flush
  EXPECT_EQ(topics(), (std::vector<std::string>{"/tasks/create", "/tasks/exit", "/tasks/delete"}));
  std::lock_guard lock(mutex_);
  EXPECT_EQ(namespaces_.front(), "testns");
}

TEST_F(TaskServiceTest, UnknownTaskAndExecIds_AreNotFound) {
  ASSERT_TRUE(create().has_value());
  cpb::StateRequest request;
  request.set_id("other");
  auto other = call<cpb::StateResponse>("State", request);
  ASSERT_FALSE(other.has_value());
  EXPECT_EQ(ttrpc::statusCode(other.error()), 5);
  request.set_id("t1");
  request.set_exec_id("e1");
  auto exec = call<cpb::StateResponse>("State", request);
  ASSERT_FALSE(exec.has_value());
  EXPECT_EQ(ttrpc::statusCode(exec.error()), 5);
}

TEST_F(TaskServiceTest, Checkpoint_IsUnimplemented) {
  ASSERT_TRUE(create().has_value());
  cpb::CheckpointTaskRequest request;
  request.set_id("t1");
  auto r = call<cpb::Empty>("Checkpoint", request);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(ttrpc::statusCode(r.error()), 12);  // UNIMPLEMENTED
  EXPECT_NE(r.error().message().find("Checkpoint is not supported"), std::string::npos);
}

TEST_F(TaskServiceTest, UpdateWithLimits_IsUnimplementedWithReason) {
  ASSERT_TRUE(create().has_value());
  cpb::UpdateTaskRequest request;
  request.set_id("t1");
  request.mutable_resources()->set_type_url(
      "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources");
  request.mutable_resources()->set_value(R"({"memory": {"limit": 67108864}})");
  auto r = call<cpb::Empty>("Update", request);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(ttrpc::statusCode(r.error()), 12);
  EXPECT_NE(r.error().message().find("not supported"), std::string::npos);
}

TEST_F(TaskServiceTest, UpdateWithMalformedResources_IsInvalidArgument) {
  ASSERT_TRUE(create().has_value());
  cpb::UpdateTaskRequest request;
  request.set_id("t1");
  request.mutable_resources()->set_value("{not json");
  auto r = call<cpb::Empty>("Update", request);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(ttrpc::statusCode(r.error()), 3);  // INVALID_ARGUMENT
}

TEST_F(TaskServiceTest, UpdateWithoutResources_ChangesNothingAndSucceeds) {
  ASSERT_TRUE(create().has_value());
  cpb::UpdateTaskRequest request;
  request.set_id("t1");
  auto r = call<cpb::Empty>("Update", request);
  EXPECT_TRUE(r.has_value()) << r.error().message();
}

TEST_F(TaskServiceTest, ExecIntoTaskNotStarted_IsFailedPrecondition_AndNotRecorded) {
  ASSERT_TRUE(create().has_value());
  cpb::ExecProcessRequest request;
  request.set_id("t1");
  request.set_exec_id("e1");
  request.mutable_spec()->set_value(R"({"args": ["true"]})");
  auto r = call<cpb::Empty>("Exec", request);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(ttrpc::statusCode(r.error()), 9);  // FAILED_PRECONDITION
  cpb::StateRequest state_request;
  state_request.set_id("t1");
  state_request.set_exec_id("e1");
  auto s = call<cpb::StateResponse>("State", state_request);
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(ttrpc::statusCode(s.error()), 5);
}

TEST_F(TaskServiceTest, ExecWithoutExecId_IsInvalidArgument) {
  ASSERT_TRUE(create().has_value());
  cpb::ExecProcessRequest request;
  request.set_id("t1");
  auto r = call<cpb::Empty>("Exec", request);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(ttrpc::statusCode(r.error()), 3);
}

TEST_F(TaskServiceTest, StatsPauseResumeResize_OfTaskNotStarted_AreFailedPrecondition) {
  ASSERT_TRUE(create().has_value());
  cpb::StatsRequest stats;
  stats.set_id("t1");
  auto st = call<cpb::StatsResponse>("Stats", stats);
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(ttrpc::statusCode(st.error()), 9);
  cpb::PauseRequest pause;
  pause.set_id("t1");
  auto p = call<cpb::Empty>("Pause", pause);
  ASSERT_FALSE(p.has_value());
  EXPECT_EQ(ttrpc::statusCode(p.error()), 9);
  cpb::ResumeRequest resume;
  resume.set_id("t1");
  auto r = call<cpb::Empty>("Resume", resume);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(ttrpc::statusCode(r.error()), 9);
  cpb::ResizePtyRequest resize;
  resize.set_id("t1");
  resize.set_width(80);
  resize.set_height(24);
  auto z = call<cpb::Empty>("ResizePty", resize);
  ASSERT_FALSE(z.has_value());
  EXPECT_EQ(ttrpc::statusCode(z.error()), 9);
}

TEST_F(TaskServiceTest, PidsOfTaskNotStarted_IsEmpty) {
  ASSERT_TRUE(create().has_value());
  cpb::PidsRequest request;
  request.set_id("t1");
  auto r = call<cpb::PidsResponse>("Pids", request);
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(r->processes_size(), 0);
}

TEST_F(TaskServiceTest, Connect_ReportsShimPid) {
  cpb::ConnectRequest request;
  request.set_id("t1");
  auto r = call<cpb::ConnectResponse>("Connect", request);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->shim_pid(), static_cast<uint32_t>(::getpid()));
  EXPECT_EQ(r->task_pid(), 0u);
}

}  // namespace
}  // namespace nv::shim
