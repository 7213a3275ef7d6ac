// Fairness by device time (issue 10 §6), through the real agent run as the
// DaemonSet runs it: a victim with one client (one request at a time) next to
// a neighbour that floods the same device with 16 clients. SqueezeNet on
// opencv-cpu, with the dynamic batching its generated config enables.
// Behaviour, not timing targets: the victim is served in turn, and the
// compute time the agent charged the two slots is near-equal.
#include <httplib.h>

#include <regex>
#include <sstream>

#include "agent_fixture.hpp"

namespace kubeaccel::testing {
namespace {

// kubeaccel_agent_compute_seconds_total summed per slot ID, from /metrics.
std::map<std::string, double> chargedCompute(int port) {
  httplib::Client http("127.0.0.1", port);
  http.set_read_timeout(10, 0);
  auto res = http.Get("/metrics");
  EXPECT_TRUE(res && res->status == 200) << "GET /metrics on port " << port;
  std::map<std::string, double> out;
  if (!res) return out;
  static const std::regex sample(R"re(^kubeaccel_agent_compute_seconds_total\{.*slot="([^"]+)".*\} (\S+)$)re");
  std::istringstream body(res->body);
  for (std::string line; std::getline(body, line);) {
    std::smatch m;
    if (std::regex_match(line, m, sample)) out[m[1]] += std::stod(m[2]);
  }
  return out;
}

int metricsPort(const std::string& log) {
  std::smatch m;
  if (!std::regex_search(log, m, std::regex("metrics on http://127.0.0.1:([0-9]+)/metrics"))) return -1;
  return std::stoi(m[1]);
}

// What the victim saw next to a neighbour: its answers, the neighbour's
// answers between two of them, and the compute time the agent charged each.
struct VictimRun {
  int answers = 0;
  std::vector<int> between;
  double victimSeconds = 0, neighbourSeconds = 0;
  double share() const {  // the victim's; -1 when nothing was charged
    double all = victimSeconds + neighbourSeconds;
    return all > 0 ? victimSeconds / all : -1;
  }
};

class FairnessTest : public AgentTest {
 protected:
  int port_ = -1;
  inference::ModelInferRequest one_ =
      inferRequest("squeezenet", "data", {1, 3, 224, 224}, bytesOf(randomFloats(kSqueezeRow, 21)));

  void SetUp() override {
    AgentTest::SetUp();
    startAgent({"--metrics-address", "127.0.0.1:0"});
    ASSERT_TRUE(h.waitForAgentLog("metrics on http://127.0.0.1:"));
    port_ = metricsPort(h.agentLog());
    ASSERT_GT(port_, 0) << h.agentLog();
  }

  // The victim (slot s1, one client, one request at a time) for `period`
  // while `neighbour` (slot s0) floods; the neighbour is stopped after.
  VictimRun victimNextTo(Load& neighbour, std::chrono::milliseconds period) {
    Client victim(socket(1));
    const std::string victimId = id_ + "-s1", neighbourId = id_ + "-s0";
    auto before = chargedCompute(port_);
    VictimRun r;
    int last = neighbour.ok();
    for (auto end = Clock::now() + period; Clock::now() < end;) {
      inference::ModelInferResponse resp;
      grpc::Status s = victim.infer(one_, &resp, 60s);
      EXPECT_TRUE(s.ok()) << s.error_message();
      if (!s.ok()) break;
      ++r.answers;
      int now = neighbour.ok();
      r.between.push_back(now - last);
      last = now;
    }
    auto after = chargedCompute(port_);  // while the neighbour still floods
    neighbour.stop();
    EXPECT_EQ(neighbour.failed(), 0) << neighbour.firstError();
    r.victimSeconds = after[victimId] - before[victimId];
    r.neighbourSeconds = after[neighbourId] - before[neighbourId];
    return r;
  }

  void warm(int slot, const inference::ModelInferRequest& req) {
    Client c(socket(slot));  // the worker's engine instance is made on first use
    inference::ModelInferResponse resp;
    grpc::Status s = c.infer(req, &resp, 60s);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
};

int medianOf(std::vector<int> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// Sixteen batch-1 clients against one: the issue's case (before: the
// neighbour filled 8-row batches every turn, rows 420 : 40).
TEST_F(FairnessTest, AVictimIsServedInTurnWhileSixteenNeighbourClientsFlood) {
  ASSERT_NO_FATAL_FAILURE(warm(1, one_));
  Load neighbour(socket(0), one_, 16);
  VictimRun r = victimNextTo(neighbour, 4s);
  std::cout << "[ agent    ] 16 x batch 1 next to the victim: victim " << r.answers << " answers, neighbour "
            << neighbour.ok() << "; neighbour answers between two victim answers: median " << medianOf(r.between)
            << "; compute charged victim " << r.victimSeconds << " s, neighbour " << r.neighbourSeconds
            << " s, victim's share " << r.share() << "\n";
  ASSERT_GE(r.answers, 10) << "the victim was hardly served in 4 s";
  // In turn: the neighbour gets about one run's worth between two of the
  // victim's requests (a few of its requests may share the victim's batch).
  EXPECT_LE(medianOf(r.between), 4) << "the victim waited for many of the neighbour's requests each time";
  // Equal device time while both have work (0.5), within a generous band: a
  // loaded machine delays the victim's client between two requests.
  EXPECT_GE(r.share(), 0.3) << "the neighbour took most of the device's compute time";
  EXPECT_LE(r.share(), 0.7) << "the victim took most of the device's compute time";
}

// Four batch-8 clients against one: each of the neighbour's runs is eight
// rows, so taking slots in turn by request would give the victim about one
// part in eight of the device. By compute time it gets about half.
TEST_F(FairnessTest, AVictimGetsHalfTheDeviceNextToBatch8Clients) {
  auto eight = inferRequest("squeezenet", "data", {8, 3, 224, 224}, bytesOf(randomFloats(8 * kSqueezeRow, 22)));
  ASSERT_NO_FATAL_FAILURE(warm(1, one_));
  ASSERT_NO_FATAL_FAILURE(warm(0, eight));
  Load neighbour(socket(0), eight, 4);
  VictimRun r = victimNextTo(neighbour, 6s);
  std::cout << "[ agent    ] 4 x batch 8 next to the victim: victim " << r.answers << " answers, neighbour "
            << neighbour.ok() << " (x 8 rows); compute charged victim " << r.victimSeconds << " s, neighbour "
            << r.neighbourSeconds << " s, victim's share " << r.share() << "\n";
  ASSERT_GE(r.answers, 10) << "the victim was hardly served in 6 s";
  EXPECT_GE(r.share(), 0.3) << "the neighbour took most of the device's compute time";
  EXPECT_LE(r.share(), 0.7) << "the victim took most of the device's compute time";
}

}  // namespace
}  // namespace kubeaccel::testing
