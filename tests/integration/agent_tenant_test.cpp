// Tenants sharing a device (issue 10). The agent runs as the DaemonSet runs
// it (uid 0, every capability dropped); tenants are unprivileged processes
// (uid 65534) that control their slot directory and what they send on their
// socket, and nothing else. Each test is one way a tenant once took down,
// starved or spied on the others; docs/architecture.md ("Trust model") lists
// which rule each one holds.
#include "agent_fixture.hpp"

#include <sys/resource.h>
#include <sys/wait.h>

#include <nlohmann/json.hpp>

#include "util/probe_socket.hpp"

namespace kubeaccel::testing {
namespace {

class TenantTest : public AgentTest {
 protected:
  void SetUp() override {
    AgentTest::SetUp();
    h.runAgentAsDaemonSet();
  }
  // Starts the capability-less agent with `slots` slots; waits for "serving".
  void startWithSlots(int slots, const std::vector<std::string>& extraArgs = {}) {
    config_ = h.writeConfig(agentConfig("opencv-cpu", slots));
    size_t before = countOf(logIfAny(), "slot socket(s)");
    h.startAgent(config_, extraArgs);
    auto deadline = Clock::now() + 20s;
    while (countOf(h.agentLog(), "slot socket(s)") <= before) {
      ASSERT_LT(Clock::now(), deadline) << "the agent did not start serving:\n" << h.agentLog();
      std::this_thread::sleep_for(5ms);
    }
    ASSERT_NO_FATAL_FAILURE(id_ = deviceIdOf(kClass));
  }
  // Runs a shell command as the tenant (uid 65534) of `slot`, through its
  // mount as a pod has it (PluginHarness::asPod); returns its exit status.
  int tenant(int slot, const std::string& script, std::string* err = nullptr) {
    std::string out, e;
    int rc = h.run(h.asPod(slotDir(slot), {"/bin/sh", "-c", script}), &out, &e);
    if (err) *err = e;
    return rc;
  }
  std::atomic<int> squatRc_{-1};  // the probe squatter's exit status, -1 while it runs
  int agentProbe(std::string* err) {
    std::string out;
    return h.run({KUBEACCEL_AGENT_BIN_FOR_TESTS, "--probe", "--agent-dir", h.agentDir()}, &out, err);
  }
  bool inferOk(int slot, std::string* why = nullptr) {
    Client c(socket(slot));
    inference::ModelInferResponse resp;
    auto x = randomFloats(4, 7);
    grpc::Status s = c.infer(inferRequest("tiny", "x", {1, 4}, bytesOf(x)), &resp, 5s);
    if (why) *why = codeName(s.error_code()) + " " + s.error_message();
    return s.ok();
  }
  bool waitHealth(const std::string& slotId, const std::string& health) {
    return h.kubelet().waitFor(
        [&](const auto& rs) { return healthOf(rs, "kubeaccel.io/movidius-ncs2", slotId) == health; }, 10s);
  }
  std::string config_;
};

// Section 1: the tenant (uid 65534, with its slot directory) cannot delete,
// rename or replace the agent's socket; it writes only in shm/.
TEST_F(TenantTest, CannotDeleteRenameOrReplaceItsSocket) {
  ASSERT_NO_FATAL_FAILURE(startWithSlots(2));
  std::string status = slurp("/proc/" + std::to_string(h.agentPid()) + "/status");
  EXPECT_NE(status.find("CapEff:\t0000000000000000"), std::string::npos) << "the agent has capabilities:\n" << status;
  EXPECT_NE(status.find("Uid:\t0\t0\t0\t0"), std::string::npos) << status;
  const std::string sock = socket(0), dir = slotDir(0);
  std::string err;
  EXPECT_NE(tenant(0, "rm -f '" + sock + "'", &err), 0) << "the tenant deleted its socket";
  EXPECT_NE(tenant(0, "mv '" + sock + "' '" + dir + "/moved'"), 0) << "the tenant renamed its socket";
  EXPECT_NE(tenant(0, "mkdir '" + dir + "/x'"), 0) << "the tenant wrote in the socket's directory";
  EXPECT_NE(tenant(0, "ln -s /nowhere '" + dir + "/inference.sock2' && mv -f '" + dir + "/inference.sock2' '" + sock + "'"),
            0)
      << "the tenant replaced its socket";
  EXPECT_NE(tenant(0, "chmod 0777 '" + dir + "'"), 0);
  EXPECT_EQ(tenant(0, "echo data > '" + shmDir(0) + "/region' && rm '" + shmDir(0) + "/region'", &err), 0)
      << "the tenant must be able to write its shared-memory files: " << err;
  struct stat st {};
  ASSERT_EQ(::lstat(sock.c_str(), &st), 0) << "the socket is gone";
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  std::string why;
  EXPECT_TRUE(inferOk(0, &why)) << why;
  EXPECT_TRUE(inferOk(1, &why)) << why;
  EXPECT_EQ(agentProbe(&err), 0) << err;
}

// Section 1: whatever a tenant left in its slot directory (a directory at the
// socket's name, with files in it, under an older agent's 0777 layout; a
// slot directory the agent may not write), the agent serves every other
// slot, serves the tampered slot when it can, and otherwise reports exactly
// that slot Unhealthy, with the probe still passing (a liveness restart
// would take every tenant down for one tenant's mess).
TEST_F(TenantTest, LeftoversInASlotDirectoryStopOnlyThatSlot) {
  ASSERT_NO_FATAL_FAILURE(startWithSlots(3));
  ASSERT_EQ(h.stopAgent(SIGTERM), 0);
  // s0: an older agent's 0777 slot directory, where the tenant made a
  // directory (with a file, and no write permission) at the socket's name.
  ASSERT_EQ(::chmod(slotDir(0).c_str(), 0777), 0);
  std::string err;
  ASSERT_EQ(tenant(0, "set -e; d='" + slotDir(0) + "/inference.sock'; mkdir \"$d\"; echo x > \"$d/f\"; chmod 0555 \"$d\"",
                   &err),
            0)
      << err;
  // s1: a slot directory the agent may not write (as with a read-only mount).
  ASSERT_EQ(::chown(slotDir(1).c_str(), 65534, 65534), 0);
  ASSERT_EQ(::chmod(slotDir(1).c_str(), 0555), 0);

  h.startPlugin(config_);
  ASSERT_NO_FATAL_FAILURE(startWithSlots(3));
  std::string why;
  EXPECT_TRUE(inferOk(2, &why)) << "an untouched slot is not served: " << why;
  EXPECT_TRUE(inferOk(0, &why)) << "the slot with a directory at the socket's name is not served: " << why;
  struct stat st {};
  ASSERT_EQ(::lstat(socket(0).c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(::lstat(socket(1).c_str(), &st), -1) << "s1 cannot be served, yet has a socket";
  EXPECT_TRUE(h.waitForAgentLog("slot " + id_ + "-s1: cannot serve it")) << h.agentLog();
  EXPECT_EQ(agentProbe(&err), 0) << "one tenant's slot must not fail the agent's liveness: " << err;
  EXPECT_TRUE(waitHealth(id_ + "-s0", "Healthy"));
  EXPECT_TRUE(waitHealth(id_ + "-s2", "Healthy"));
  EXPECT_TRUE(waitHealth(id_ + "-s1", "Unhealthy")) << "exactly the tampered slot is reported Unhealthy";
  ASSERT_EQ(::chmod(slotDir(1).c_str(), 0755), 0);  // let the fixture clean up
}

}  // namespace
}  // namespace kubeaccel::testing

namespace kubeaccel::testing {
namespace {

// A tenant that opens `n` idle connections to `socket` at once, writes how
// many the agent kept open after a second to `<flag>.open`, and holds them
// until `<flag>.release` exists.
const char* kBurst = R"PY(
import os, socket, sys, time, resource
path, n, flag = sys.argv[1], int(sys.argv[2]), sys.argv[3]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
conns = []
for _ in range(n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
    except OSError:
        s.close()
        continue
    conns.append(s)
time.sleep(1.0)
kept = 0
for s in conns:
    s.setblocking(False)
    try:
        kept += s.recv(1) != b''   # an HTTP/2 frame: still open
    except BlockingIOError:
        kept += 1                  # nothing yet: still open
    except OSError:
        pass
with open(flag + ".open", "w") as f:
    f.write(str(kept))
while not os.path.exists(flag + ".release"):
    time.sleep(0.05)
)PY";

class FdBurstTest : public TenantTest {
 protected:
  // Runs the burst as the tenant in a thread; returns how many connections
  // the agent kept open, with the burst still holding them.
  int startBurst(int slot, int n) {
    std::string script = h.root() + "/burst.py";
    std::ofstream(script) << kBurst;
    fs::create_directories(h.root() + "/tenant");
    fs::permissions(h.root() + "/tenant", fs::perms::all);  // the tenant writes its flags there
    flag_ = h.root() + "/tenant/burst";
    burst_ = std::thread([this, script, slot, n] {
      std::string out, err;
      burstRc_ = h.run(h.asPod(slotDir(slot), {"/usr/bin/python3", script, socket(slot), std::to_string(n), flag_}),
                       &out, &err);
      burstErr_ = err;
    });
    auto deadline = Clock::now() + 30s;
    while (!fs::exists(flag_ + ".open")) {
      if (Clock::now() > deadline) return -1;
      std::this_thread::sleep_for(20ms);
    }
    std::this_thread::sleep_for(20ms);
    return std::stoi(slurp(flag_ + ".open"));
  }
  void endBurst() {
    std::ofstream(flag_ + ".release") << "";
    if (burst_.joinable()) burst_.join();
    EXPECT_EQ(burstRc_, 0) << burstErr_;
  }
  void TearDown() override {
    if (burst_.joinable()) endBurst();
    TenantTest::TearDown();
  }
  // Waits until a NEW client on `slot` gets an inference through.
  bool newClientServed(int slot, std::chrono::seconds within, std::string* why) {
    auto deadline = Clock::now() + within;
    do {
      if (inferOk(slot, why)) return true;
      std::this_thread::sleep_for(100ms);
    } while (Clock::now() < deadline);
    return false;
  }
  std::string flag_;
  std::thread burst_;
  int burstRc_ = -1;
  std::string burstErr_;
};

// Section 3: the agent raises its soft open-file limit to the hard limit.
TEST_F(TenantTest, RaisesItsOpenFileLimitToTheHardLimit) {
  h.runAgentAsDaemonSet({"/usr/bin/prlimit", "--nofile=1024:4096", "--"});
  ASSERT_NO_FATAL_FAILURE(startWithSlots(2));
  std::string limits = slurp("/proc/" + std::to_string(h.agentPid()) + "/limits");
  EXPECT_NE(limits.find("Max open files            4096                 4096"), std::string::npos) << limits;
}

// Section 3: 1,100 idle connections on one slot, with the agent's fd limit at
// 1,024: the slot keeps at most --max-connections of them; the other slot and
// the probe are unaffected meanwhile; and once the tenant lets go, new
// clients on the flooded slot are served.
TEST_F(FdBurstTest, ConnectionsPerSlotAreLimited) {
  h.runAgentAsDaemonSet({"/usr/bin/prlimit", "--nofile=1024:1024", "--"});
  ASSERT_NO_FATAL_FAILURE(startWithSlots(2, {"--max-connections", "64"}));
  int kept = startBurst(0, 1100);
  std::cout << "[ tenant   ] 1100 connections on s0: the agent kept " << kept << " open\n";
  EXPECT_GE(kept, 1);
  EXPECT_LE(kept, 64) << "the slot kept more connections than --max-connections";
  std::string why;
  EXPECT_TRUE(newClientServed(1, 5s, &why)) << "the other slot is not served during the burst: " << why;
  EXPECT_EQ(probe(agentProbePath(h.agentDir()), &why), 0) << why;
  EXPECT_TRUE(h.waitForAgentLog("refused a connection: 64 open, the limit is 64")) << h.agentLog();
  endBurst();
  EXPECT_TRUE(newClientServed(0, 5s, &why)) << "the flooded slot is not served after the burst: " << why;
  EXPECT_TRUE(newClientServed(1, 5s, &why)) << why;
}

// Section 3: with no per-slot limit to save it, a burst exhausts the agent's
// descriptors and accept fails (EMFILE). The listener must come back by
// itself: 5 s after the tenant let go, new clients on every slot are served,
// and the probe passes.
TEST_F(FdBurstTest, AListenerThatRanOutOfDescriptorsRecovers) {
  h.runAgentAsDaemonSet({"/usr/bin/prlimit", "--nofile=1024:1024", "--"});
  ASSERT_NO_FATAL_FAILURE(startWithSlots(2, {"--max-connections", "100000"}));
  int kept = startBurst(0, 1100);
  std::cout << "[ tenant   ] 1100 connections on s0, no per-slot limit: " << kept << " open\n";
  // The agent reached its descriptor limit: accept4 failed (EMFILE), or the
  // listener refused connections to keep the last 16 descriptors for gRPC.
  bool exhausted = false;
  for (auto until = Clock::now() + 20s; !exhausted && Clock::now() < until; std::this_thread::sleep_for(50ms)) {
    std::string log = h.agentLog();
    exhausted = log.find("Too many open files") != std::string::npos ||
                log.find("fewer than 16 file descriptors left") != std::string::npos;
  }
  EXPECT_TRUE(exhausted) << "the burst did not exhaust the agent's descriptors";
  endBurst();
  std::string why;
  EXPECT_TRUE(newClientServed(0, 5s, &why)) << "the flooded slot did not recover: " << why;
  EXPECT_TRUE(newClientServed(1, 5s, &why)) << "the other slot did not recover: " << why;
  EXPECT_EQ(probe(agentProbePath(h.agentDir()), &why), 0) << why;
}

// Section 3: a slot's health comes from a NEW connection that is answered,
// not from an old channel still open. The tenant holds --max-connections idle
// connections on s0, so the agent closes every new connection there, while
// the plugin's watch stream (opened before) stays open and ServerReady on it
// still says true. The plugin's check from a new connection turns s0
// Unhealthy, s1 stays Healthy, and s0 is Healthy again once the tenant lets go.
TEST_F(FdBurstTest, ASlotThatTakesNoNewConnectionIsUnhealthy) {
  ASSERT_NO_FATAL_FAILURE(startWithSlots(2, {"--max-connections", "8"}));
  h.startPlugin(config_);
  const std::string s0 = id_ + "-s0", s1 = id_ + "-s1";
  ASSERT_TRUE(waitHealth(s0, "Healthy")) << h.pluginLog();
  ASSERT_TRUE(waitHealth(s1, "Healthy")) << h.pluginLog();
  int kept = startBurst(0, 50);
  std::cout << "[ tenant   ] 50 connections on s0: the agent kept " << kept << " open\n";
  EXPECT_LE(kept, 8);
  auto t0 = Clock::now();
  ASSERT_TRUE(h.kubelet().waitFor(
      [&](const auto& rs) {
        return healthOf(rs, "kubeaccel.io/movidius-ncs2", s0) == "Unhealthy" &&
               healthOf(rs, "kubeaccel.io/movidius-ncs2", s1) == "Healthy";
      },
      15s))
      << "s0 takes no new connection, yet it is advertised Healthy (or s1 is not):\n"
      << h.pluginLog();
  std::cout << "[ plugin   ] s0 Unhealthy " << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count()
            << " ms after the tenant held its connections\n";
  EXPECT_NE(h.pluginLog().find("agent slot " + s0 + " is not ready: 2 new connections in a row were not answered"),
            std::string::npos)
      << h.pluginLog();
  endBurst();
  EXPECT_TRUE(h.kubelet().waitFor(
      [&](const auto& rs) { return healthOf(rs, "kubeaccel.io/movidius-ncs2", s0) == "Healthy"; }, 15s))
      << "s0 serves new connections again, yet it stays Unhealthy:\n"
      << h.pluginLog();
}

}  // namespace
}  // namespace kubeaccel::testing

namespace kubeaccel::testing {
namespace {

// Repository and statistics: a slot's socket cannot load or unload a model
// (one tenant toggling a model made its neighbour's requests fail); only the
// admin socket (0600, out of a tenant's reach) can, and the `kubeaccel` CLI
// reaches it.
TEST_F(TenantTest, OnlyTheAdminSocketChangesTheRepository) {
  ASSERT_NO_FATAL_FAILURE(startWithSlots(2));
  Client c0(socket(0));
  inference::RepositoryModelUnloadRequest unload;
  unload.set_model_name("tiny");
  inference::RepositoryModelUnloadResponse unloadResp;
  grpc::Status s = c0.RepositoryModelUnload(unload, &unloadResp);
  EXPECT_EQ(codeName(s.error_code()), "PERMISSION_DENIED") << s.error_message();
  EXPECT_NE(s.error_message().find("admin.sock"), std::string::npos) << s.error_message();
  inference::RepositoryModelLoadRequest load;
  load.set_model_name("tiny");
  inference::RepositoryModelLoadResponse loadResp;
  s = c0.RepositoryModelLoad(load, &loadResp);
  EXPECT_EQ(codeName(s.error_code()), "PERMISSION_DENIED") << s.error_message();
  std::string why;
  EXPECT_TRUE(inferOk(1, &why)) << "the neighbour lost its model: " << why;

  // The admin socket: 0600, the agent's; a tenant cannot connect to it.
  struct stat st {};
  ASSERT_EQ(::stat(adminSocket().c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_uid, 0u);
  std::string out, err;
  const std::string cli = KUBEACCEL_CLI_BIN;
  EXPECT_NE(h.run(PluginHarness::asTenant({cli, "models", "--agent-dir", h.agentDir(), "unload", "tiny"}), &out, &err),
            0)
      << "a tenant reached the admin socket: " << out;
  EXPECT_TRUE(inferOk(1, &why)) << why;

  // An admin, with the CLI: unload stops the model on every slot, load brings it back.
  ASSERT_EQ(h.run({cli, "models", "--agent-dir", h.agentDir(), "unload", "tiny"}, &out, &err), 0) << err;
  EXPECT_FALSE(inferOk(0, &why));
  EXPECT_NE(why.find("UNAVAILABLE"), std::string::npos) << why;
  ASSERT_EQ(h.run({cli, "models", "--agent-dir", h.agentDir(), "load", "tiny"}, &out, &err), 0) << err;
  EXPECT_TRUE(inferOk(0, &why)) << why;
  EXPECT_TRUE(inferOk(1, &why)) << why;
  ASSERT_EQ(h.run({cli, "models", "--agent-dir", h.agentDir(), "list"}, &out, &err), 0) << err;
  EXPECT_NE(out.find("tiny\t1\tREADY"), std::string::npos) << out;
}

// Repository and statistics: ModelStatistics on a slot gives that slot's own
// figures; the admin socket gives the device's.
TEST_F(TenantTest, SlotStatisticsAreTheSlotsOwn) {
  ASSERT_NO_FATAL_FAILURE(startWithSlots(2));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(inferOk(0));
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(inferOk(1));
  auto s0 = Client(socket(0)).statistics("tiny");
  auto s1 = Client(socket(1)).statistics("tiny");
  auto all = Client(adminSocket()).statistics("tiny");
  EXPECT_EQ(s0.inference_stats().success().count(), 3u) << "slot 0 sees figures other than its own";
  EXPECT_EQ(s1.inference_stats().success().count(), 5u);
  EXPECT_EQ(s0.inference_count(), 3u);
  EXPECT_EQ(s0.execution_count(), 3u);
  EXPECT_EQ(all.inference_stats().success().count(), 8u) << "the admin socket shows the device's figures";
  EXPECT_EQ(all.execution_count(), 8u);
  std::string out, err;
  ASSERT_EQ(h.run({KUBEACCEL_CLI_BIN, "models", "--agent-dir", h.agentDir(), "stats", "tiny", "--json"}, &out, &err), 0)
      << err;
  EXPECT_NE(out.find("\"inferenceCount\":\"8\""), std::string::npos) << out;
}

}  // namespace
}  // namespace kubeaccel::testing

namespace kubeaccel::testing {
namespace {

long rssKb(pid_t pid) {
  std::string status = slurp("/proc/" + std::to_string(pid) + "/status");
  auto pos = status.find("VmRSS:");
  return pos == std::string::npos ? -1 : std::stol(status.substr(pos + 6));
}

// Section 2: a ModelStreamInfer client that never reads its answers. The
// agent stops reading from the stream once --max-stream-backlog requests and
// answers are pending, so its memory stays put, where it once queued every
// answer (2 GB in 10 s). 96 relu requests of 4 MiB, 4 MiB answers each,
// with the agent in a 1 GiB memory cgroup (the DaemonSet's limit):
// unbounded, it took them all and was OOM-killed.
TEST_F(TenantTest, UnreadStreamAnswersStayBounded) {
  // The DaemonSet's memory limit for the agent: 1 GiB.
  if (!h.limitAgentMemory(uint64_t{1} << 30)) GTEST_SKIP() << "the memory cgroup (v1) is not writable here";
  ASSERT_NO_FATAL_FAILURE(startWithSlots(2));
  ASSERT_TRUE(inferOk(0));
  long before = rssKb(h.agentPid());
  Client c(socket(0));
  grpc::ClientContext ctx;
  auto stream = c.stub().ModelStreamInfer(&ctx);
  const int64_t n = int64_t{1} << 20;
  auto req = inferRequest("relu", "x", {1, n}, bytesOf(randomFloats(static_cast<size_t>(n), 3)));
  std::atomic<int> written{0};
  std::thread writer([&] {
    for (int i = 0; i < 96; ++i) {
      if (!stream->Write(req)) return;
      ++written;
    }
  });
  long peak = before;
  for (auto end = Clock::now() + 6s; Clock::now() < end; std::this_thread::sleep_for(100ms))
    peak = std::max(peak, rssKb(h.agentPid()));
  std::cout << "[ tenant   ] unread stream: " << written << " of 96 requests of 4 MiB taken; agent RSS " << before / 1024
            << " MiB -> peak " << peak / 1024 << " MiB\n";
  ctx.TryCancel();
  writer.join();
  EXPECT_LT(written.load(), 96) << "the agent kept reading a stream whose answers are not read";
  EXPECT_LT(peak - before, 300 * 1024) << "the agent's memory grew by " << (peak - before) / 1024 << " MiB";
  int status = 0;
  EXPECT_EQ(::waitpid(h.agentPid(), &status, WNOHANG), 0) << "the agent died (status " << status << ")";
  std::string why;
  EXPECT_TRUE(inferOk(1, &why)) << why;
  EXPECT_TRUE(inferOk(0, &why)) << why;
}

// Section 2: open streams per slot are bounded (--max-streams), with a clear
// error; the other slot is unaffected.
TEST_F(TenantTest, OpenStreamsPerSlotAreBounded) {
  ASSERT_NO_FATAL_FAILURE(startWithSlots(2, {"--max-streams", "4"}));
  Client c(socket(0));
  std::vector<std::unique_ptr<grpc::ClientContext>> ctxs;
  std::vector<std::unique_ptr<grpc::ClientReaderWriter<inference::ModelInferRequest, inference::ModelStreamInferResponse>>>
      streams;
  auto req = inferRequest("tiny", "x", {1, 4}, bytesOf(randomFloats(4, 1)));
  for (int i = 0; i < 4; ++i) {
    ctxs.push_back(std::make_unique<grpc::ClientContext>());
    streams.push_back(c.stub().ModelStreamInfer(ctxs.back().get()));
    ASSERT_TRUE(streams.back()->Write(req));
    inference::ModelStreamInferResponse resp;
    ASSERT_TRUE(streams.back()->Read(&resp)) << "stream " << i;
    EXPECT_EQ(resp.error_message(), "");
  }
  grpc::ClientContext extra;
  auto fifth = c.stub().ModelStreamInfer(&extra);
  fifth->Write(req);
  inference::ModelStreamInferResponse resp;
  EXPECT_FALSE(fifth->Read(&resp));
  grpc::Status s = fifth->Finish();
  EXPECT_EQ(codeName(s.error_code()), "RESOURCE_EXHAUSTED") << s.error_message();
  EXPECT_NE(s.error_message().find("--max-streams"), std::string::npos) << s.error_message();
  std::string why;
  EXPECT_TRUE(inferOk(1, &why)) << why;
  for (auto& st : streams) st->WritesDone();
  for (auto& st : streams) EXPECT_TRUE(st->Finish().ok());
}

// Section 2: shared-memory regions per slot are bounded in number and in
// total size (sparse files once got 4 x 64 GiB accepted), configurably.
TEST_F(TenantTest, RegionsPerSlotAreBoundedInNumberAndSize) {
  ASSERT_NO_FATAL_FAILURE(startWithSlots(2, {"--max-regions", "3", "--max-region-bytes", "65536"}));
  Client c(socket(0));
  std::string err;
  ASSERT_EQ(tenant(0, "truncate -s 64G '" + shmDir(0) + "/sparse' && truncate -s 4096 '" + shmDir(0) +
                       "/small' && chmod 0666 '" + shmDir(0) + "/sparse' '" + shmDir(0) + "/small'",
                   &err),
            0)
      << err;
  grpc::Status s = c.registerRegion("huge", "sparse", 0, uint64_t{64} << 30);
  EXPECT_EQ(codeName(s.error_code()), "RESOURCE_EXHAUSTED") << s.error_message();
  EXPECT_NE(s.error_message().find("--max-region-bytes"), std::string::npos) << s.error_message();
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(c.registerRegion("r" + std::to_string(i), "small", 0, 4096).ok());
  s = c.registerRegion("r3", "small", 0, 4096);
  EXPECT_EQ(codeName(s.error_code()), "RESOURCE_EXHAUSTED") << s.error_message();
  EXPECT_NE(s.error_message().find("--max-regions"), std::string::npos) << s.error_message();
  EXPECT_TRUE(Client(socket(1)).registerRegion("r0", "x", 0, 1).error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED)
      << "the other slot's budget is its own";
}

}  // namespace
}  // namespace kubeaccel::testing

namespace kubeaccel::testing {
namespace {

// Section 2: bytes in flight per slot. While slot 1 keeps the worker busy,
// slot 0 sends 16 requests of 1 MiB at once against a 4 MiB bound: those past
// the bound are refused RESOURCE_EXHAUSTED naming the flag, the rest are
// answered, and slot 1 is unaffected.
TEST_F(TenantTest, BytesInFlightPerSlotAreBounded) {
  if (!h.limitAgentMemory(uint64_t{1} << 30)) GTEST_SKIP() << "the memory cgroup (v1) is not writable here";
  ASSERT_NO_FATAL_FAILURE(startWithSlots(2, {"--max-inflight-bytes", "4194304"}));
  ASSERT_TRUE(inferOk(0));
  std::thread busy([&] {
    Client c(socket(1));
    inference::ModelInferResponse resp;
    grpc::Status s = c.infer(
        inferRequest("squeezenet", "data", {32, 3, 224, 224}, bytesOf(randomFloats(32 * kSqueezeRow, 2))), &resp, 60s);
    EXPECT_TRUE(s.ok()) << "slot 1: " << s.error_message();
  });
  std::this_thread::sleep_for(150ms);  // the 19 MB request reaches the worker
  const int64_t n = 256 * 1024;        // 1 MiB of floats
  auto req = inferRequest("relu", "x", {1, n}, bytesOf(randomFloats(static_cast<size_t>(n), 4)));
  std::vector<grpc::Status> status(16);
  std::vector<std::thread> threads;
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 16; ++i) clients.push_back(std::make_unique<Client>(socket(0)));
  for (int i = 0; i < 16; ++i)
    threads.emplace_back([&, i] {
      inference::ModelInferResponse resp;
      status[i] = clients[i]->infer(req, &resp, 60s);
    });
  for (auto& t : threads) t.join();
  busy.join();
  int ok = 0, refused = 0;
  std::string message;
  for (const auto& s : status) {
    ok += s.ok();
    if (s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
      ++refused;
      message = s.error_message();
    }
  }
  std::cout << "[ tenant   ] 16 x 1 MiB at once, 4 MiB bound: " << ok << " answered, " << refused << " refused: "
            << message << "\n";
  EXPECT_EQ(ok + refused, 16);
  EXPECT_GE(ok, 3);
  EXPECT_GE(refused, 1) << "nothing bounded the bytes in flight";
  EXPECT_NE(message.find("--max-inflight-bytes"), std::string::npos) << message;
}

}  // namespace
}  // namespace kubeaccel::testing

namespace kubeaccel::testing {
namespace {

// Section 4: the next pod on a slot inherits nothing of the last one. Pod A
// (uid 65534) leaves files (one in a directory it made read-only), a
// registered region with its secret input, and statistics; the kubelet then
// allocates the slot to pod B. The plugin's Allocate has the agent empty the
// slot first (admin HandOverSlot): B finds no file, no region, no figures,
// cannot infer from A's region, and its `kubeaccel infer --shm` works.
TEST_F(TenantTest, EachPodStartsWithAnEmptySlot) {
  ASSERT_NO_FATAL_FAILURE(startWithSlots(2));
  h.startPlugin(config_);
  const std::string slotId = id_ + "-s1", resource = "kubeaccel.io/movidius-ncs2";
  ASSERT_TRUE(waitHealth(slotId, "Healthy"));
  v1beta1::AllocateResponse resp;
  grpc::Status s = h.kubelet().allocate(resource, {slotId}, &resp);
  ASSERT_TRUE(s.ok()) << "pod A: " << s.error_message();

  // Pod A.
  std::string err;
  ASSERT_EQ(tenant(1, "set -e; cd '" + shmDir(1) + "'; echo 'tenant A confidential bytes' > notes; mkdir d;"
                   " echo more > d/f; chmod 0555 d; head -c 32 /dev/zero > secret; chmod 0666 secret",
                   &err),
            0)
      << err;
  auto x = randomFloats(4, 9);
  {
    std::fstream f(shmDir(1) + "/secret", std::ios::in | std::ios::out | std::ios::binary);
    f.write(bytesOf(x).data(), 16);
  }
  std::ofstream(shmDir(0) + "/neighbour") << "slot 0's own";
  Client a(socket(1));
  s = a.registerRegion("a", "secret", 0, 32);
  ASSERT_TRUE(s.ok()) << s.error_message();
  auto fromRegion = [](const std::string& region) {
    inference::ModelInferRequest req;
    req.set_model_name("tiny");
    auto* in = req.add_inputs();
    in->set_name("x");
    in->set_datatype("FP32");
    in->add_shape(1);
    in->add_shape(4);
    (*in->mutable_parameters())["shared_memory_region"].set_string_param(region);
    return req;
  };
  inference::ModelInferResponse out;
  s = a.infer(fromRegion("a"), &out);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(a.statistics("tiny").inference_stats().success().count(), 1u);

  // The slot goes to pod B.
  s = h.kubelet().allocate(resource, {slotId}, &resp);
  ASSERT_TRUE(s.ok()) << "pod B: " << s.error_message();
  std::string out2, err2;
  ASSERT_EQ(h.run(h.asPod(slotDir(1), {"/bin/ls", "-A", slotDir(1), shmDir(1)}), &out2, &err2), 0) << err2;
  const std::string pod = h.podPath(slotDir(1));
  EXPECT_EQ(out2, pod + ":\ninference.sock\nshm\n\n" + pod + "/shm:\n")
      << "pod B sees what pod A left";
  Client b(socket(1));
  inference::SystemSharedMemoryStatusRequest sreq;
  inference::SystemSharedMemoryStatusResponse sresp;
  grpc::ClientContext sctx;
  ASSERT_TRUE(b.stub().SystemSharedMemoryStatus(&sctx, sreq, &sresp).ok());
  EXPECT_EQ(sresp.regions_size(), 0) << "pod B sees pod A's region";
  s = b.infer(fromRegion("a"), &out);
  EXPECT_EQ(codeName(s.error_code()), "NOT_FOUND") << "pod B ran inference on pod A's input: " << s.error_message();
  auto st = b.statistics("tiny");
  EXPECT_EQ(st.inference_stats().success().count(), 0u) << "pod B sees pod A's statistics";
  EXPECT_EQ(st.inference_stats().fail().count(), 1u) << "only B's own refused request";
  std::string cliOut, cliErr;
  EXPECT_EQ(h.run(h.asPod(slotDir(1), {KUBEACCEL_CLI_BIN, "infer", "--socket", "unix://" + socket(1), "--model",
                                           "tiny", "--shm"}),
                  &cliOut, &cliErr),
            0)
      << cliErr;
  EXPECT_TRUE(fs::exists(shmDir(0) + "/neighbour")) << "the hand-over of s1 touched s0";
  // shm/ went whole: one entry.
  EXPECT_TRUE(h.waitForAgentLog("slot " + slotId + ": handed over: 1 entries and 1 shared-memory regions"))
      << h.agentLog();
}

}  // namespace
}  // namespace kubeaccel::testing

namespace kubeaccel::testing {
namespace {

// Section 5: node users cannot reach slot directories. A root-in-container
// pod can leave a setuid-root program in its shm/; a node user (uid 65534,
// no mount) must not be able to list the slot, read the file or run it. The
// agent makes --agent-dir 0700; a pod reaches its slot only through the
// mount its runtime makes, which still works.
TEST_F(TenantTest, NodeUsersCannotReachSlotDirectories) {
  ASSERT_NO_FATAL_FAILURE(startWithSlots(1));
  struct stat st {};
  ASSERT_EQ(::stat(h.agentDir().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u) << "--agent-dir is reachable by node users";
  const std::string planted = shmDir(0) + "/planted";
  fs::copy_file("/usr/bin/id", planted);
  ASSERT_EQ(::chmod(planted.c_str(), 04755), 0);  // setuid root, as root in a container can make it
  std::string out, err;
  EXPECT_NE(h.run(PluginHarness::asTenant({"/bin/ls", slotDir(0)}), &out, &err), 0)
      << "a node user listed a slot directory: " << out;
  EXPECT_NE(h.run(PluginHarness::asTenant({"/bin/ls", shmDir(0)}), &out, &err), 0) << out;
  EXPECT_NE(h.run(PluginHarness::asTenant({"/bin/cat", planted}), &out, &err), 0) << "a node user read a pod's file";
  out.clear();
  // From a shell already running as the node user (setpriv itself execs its
  // program before it has given up root's capabilities, so it would not tell).
  EXPECT_NE(h.run(PluginHarness::asTenant({"/bin/sh", "-c", "exec '" + planted + "' -u"}), &out, &err), 0)
      << "a node user ran a pod's setuid file, euid " << out;
  EXPECT_EQ(out, "");
  EXPECT_EQ(tenant(0, "test -x '" + planted + "'", &err), 0) << "the pod lost its own slot: " << err;
}

// Section 5: a slot's CDI device mounts it nosuid, nodev and noexec. Mounted
// as the plugin's CDI spec says (as runc applies a bind mount with options:
// bind, then remount with the flags), a setuid-root program planted in shm/
// does not run, so it cannot give euid 0 to the next non-root pod. The same
// program through a plain bind mount (the device-plugin Mount, which has no
// options) does give euid 0: the case the CDI mount is there for, and the
// proof that this test can fail.
TEST_F(TenantTest, ASetuidFileInTheSlotGivesNoPrivilegeThroughItsCdiMount) {
  ASSERT_NO_FATAL_FAILURE(startWithSlots(1));
  h.startPlugin(config_);
  const std::string slotId = id_ + "-s0";
  ASSERT_TRUE(waitHealth(slotId, "Healthy")) << h.pluginLog();
  nlohmann::json spec = nlohmann::json::parse(slurp(h.root() + "/cdi/kubeaccel.io-movidius-ncs2.json"));
  nlohmann::json mounts;
  for (const auto& d : spec["devices"])
    if (d["name"] == slotId) mounts = d["containerEdits"]["mounts"];
  ASSERT_EQ(mounts.size(), 2u) << spec.dump(2);

  const std::string planted = shmDir(0) + "/planted";
  fs::copy_file("/usr/bin/id", planted);
  ASSERT_EQ(::chmod(planted.c_str(), 04755), 0);
  const std::string pod = h.podPath(slotDir(0));
  fs::create_directories(pod);
  auto runAsPod = [&](const std::string& mountScript, std::string* out, std::string* err) {
    // The program is started by a shell that already runs as the pod's user:
    // setpriv execs its own program before root's capabilities are gone.
    std::string script = mountScript +
                         " && exec /usr/bin/setpriv --reuid=65534 --regid=65534 --clear-groups -- /bin/sh -c \"exec '" +
                         pod + "/shm/planted' -u\"";
    return h.run({"/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script}, out, err);
  };

  std::string out, err;
  int rc = runAsPod("mount --bind '" + slotDir(0) + "' '" + pod + "'", &out, &err);
  if (rc != 0 || out != "0\n")
    GTEST_SKIP() << "a setuid file gives no euid 0 here even without nosuid (rc " << rc << ", out '" << out
                 << "', " << err << "): the file system of the test's root is nosuid already";

  std::string script;
  for (const auto& m : mounts) {
    std::string inside = m["containerPath"].get<std::string>();
    std::string target = pod + inside.substr(std::string("/run/kubeaccel").size());
    std::string flags = "bind";
    for (const auto& o : m["options"])
      if (o != "rbind") flags += "," + o.get<std::string>();
    if (!script.empty()) script += " && ";
    script += "mount --rbind '" + m["hostPath"].get<std::string>() + "' '" + target + "' && mount -o remount," + flags +
              " '" + target + "'";
  }
  out.clear();
  rc = runAsPod(script, &out, &err);
  EXPECT_NE(rc, 0) << "the planted program ran through the CDI mount (" << script << ")";
  EXPECT_EQ(out, "") << "the next pod got euid " << out << " from a file in its slot";
  EXPECT_NE(err.find("Permission denied"), std::string::npos) << err;
}

// Section 7: shared memory from a non-root pod (uid 65534) against the agent
// as the DaemonSet runs it (no CAP_DAC_OVERRIDE): the CLI makes its region
// file 0666, which the agent can open read-write; a 0600 file is refused
// with PERMISSION_DENIED saying so.
TEST_F(TenantTest, SharedMemoryWorksForANonRootPod) {
  ASSERT_NO_FATAL_FAILURE(startWithSlots(2));
  std::string out, err;
  ASSERT_EQ(h.run(h.asPod(slotDir(0), {KUBEACCEL_CLI_BIN, "infer", "--socket", "unix://" + socket(0), "--model",
                                           "squeezenet", "--shm", "--json"}),
                  &out, &err),
            0)
      << err;
  EXPECT_NE(out.find("\"outputs\""), std::string::npos) << out;
  ASSERT_EQ(tenant(0, "head -c 64 /dev/zero > '" + shmDir(0) + "/private' && chmod 0600 '" + shmDir(0) + "/private'"), 0);
  grpc::Status s = Client(socket(0)).registerRegion("p", "private", 0, 64);
  EXPECT_EQ(codeName(s.error_code()), "PERMISSION_DENIED") << s.error_message();
}

}  // namespace
}  // namespace kubeaccel::testing

namespace kubeaccel::testing {
namespace {

// A process of another user holds a probe name (abstract, or a path when it
// starts with '/') and answers "ok"; exits 1 if it cannot bind it.
const char* kSquatter = R"PY(
import os, socket, sys, time
name, flag = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.bind(name if name.startswith('/') else '\0' + name)
except OSError as e:
    print(e, file=sys.stderr)
    sys.exit(1)
s.listen(8)
s.settimeout(0.05)
open(flag + ".ready", "w").close()
while not os.path.exists(flag + ".release"):
    try:
        c, _ = s.accept()
        c.sendall(b"ok\n")
        c.close()
    except socket.timeout:
        pass
)PY";

// Section 8, probe squatting. The agent's and the plugin's probes are
// sockets in the agent's 0700 directory, where a uid-65534 process cannot
// bind; a squatter of their old abstract names neither keeps them from
// starting nor passes for them.
TEST_F(TenantTest, AProbeNameHeldByAnotherUserIsNotTheAgent) {
  fs::create_directories(h.root() + "/tenant");
  fs::permissions(h.root() + "/tenant", fs::perms::all);
  std::string script = h.root() + "/squat.py", flag = h.root() + "/tenant/squat";
  std::ofstream(script) << kSquatter;
  std::thread squatter;
  auto squat = [&](const std::string& name) {
    squatter = std::thread([&, name] {
      std::string out, err;
      squatRc_ = h.run(PluginHarness::asTenant({"/usr/bin/python3", script, name, flag}), &out, &err);
    });
    auto deadline = Clock::now() + 20s;
    while (!fs::exists(flag + ".ready") && Clock::now() < deadline) {
      if (squatRc_ >= 0) return false;  // it exited: could not bind
      std::this_thread::sleep_for(20ms);
    }
    return fs::exists(flag + ".ready");
  };
  auto release = [&] {
    std::ofstream(flag + ".release") << "";
    if (squatter.joinable()) squatter.join();
    fs::remove(flag + ".ready");
    fs::remove(flag + ".release");
    squatRc_ = -1;
  };

  std::string why;
  // The agent's path cannot be taken by another user: with the agent
  // directory in place (an agent ran and stopped), binding it fails.
  ASSERT_NO_FATAL_FAILURE(startWithSlots(1));
  struct stat st {};
  ASSERT_EQ(::stat(agentProbePath(h.agentDir()).c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_uid, 0u);
  ASSERT_EQ(h.stopAgent(SIGTERM), 0);
  EXPECT_FALSE(fs::exists(agentProbePath(h.agentDir()))) << "the agent left its probe socket";
  EXPECT_FALSE(squat(agentProbePath(h.agentDir()))) << "uid 65534 took the agent's probe socket";
  release();
  // Its old abstract name held by uid 65534: the agent starts all the same
  // (before, it exited 1) and its probe passes.
  ASSERT_TRUE(squat("kubeaccel-agent-" + std::to_string(std::hash<std::string>{}(h.agentDir()))));
  ASSERT_NO_FATAL_FAILURE(startWithSlots(1));
  EXPECT_EQ(probe(agentProbePath(h.agentDir()), &why), 0) << why;
  std::string err;
  EXPECT_EQ(agentProbe(&err), 0) << "kubeaccel-agent --probe: " << err;
  release();

  // The plugin's probe likewise (the same kind of fault): a uid-65534
  // process holding the plugin's old abstract name keeps it from neither
  // starting nor passing; its socket is 0600 in the agent directory, where
  // that process cannot bind, and goes when the plugin stops.
  ASSERT_TRUE(squat("kubeaccel-plugin-" + std::to_string(std::hash<std::string>{}(h.kubeletDir()))));
  h.startPlugin(config_);
  std::vector<std::string> pluginProbe = {KUBEACCEL_PLUGIN_BIN_FOR_TESTS, "--probe", "--agent-dir", h.agentDir()};
  auto deadline = Clock::now() + 20s;
  int rc = 1;
  std::string out;
  while (Clock::now() < deadline && (rc = h.run(pluginProbe, &out, &err)) != 0) std::this_thread::sleep_for(200ms);
  EXPECT_EQ(rc, 0) << "kubeaccel-plugin --probe next to a squatter of its old name: " << err;
  release();
  ASSERT_EQ(::stat(pluginProbePath(h.agentDir()).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(h.stopPlugin(SIGTERM), 0);
  EXPECT_FALSE(fs::exists(pluginProbePath(h.agentDir()))) << "the plugin left its probe socket";
  EXPECT_FALSE(squat(pluginProbePath(h.agentDir()))) << "uid 65534 took the plugin's probe socket";
  release();
}

}  // namespace
}  // namespace kubeaccel::testing
