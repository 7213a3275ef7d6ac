// The daemons' /metrics endpoints after real work: valid by promtool.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <thread>

#include "metrics_scrape.hpp"
#include "plugin_harness.hpp"

namespace kubeaccel::testing {
namespace {

// "" when promtool is happy (or absent: then the caller skips), else its complaint.
std::string promtoolProblems(const std::string& dir, const std::string& body, bool* missing) {
  *missing = std::system("command -v promtool >/dev/null") != 0;
  if (*missing) return "";
  std::string file = dir + "/metrics.txt";
  std::ofstream(file) << body;
  int rc = std::system(("promtool check metrics < " + file + " > " + file + ".out 2>&1").c_str());
  std::ifstream in(file + ".out");
  std::string out((std::istreambuf_iterator<char>(in)), {});
  return rc == 0 && out.empty() ? "" : "promtool: " + out;
}

TEST(PluginMetrics, CountsDevicesRegistrationsAndAllocations) {
  PluginHarness h;
  h.plug("coral-pcie.umockdev");
  h.startPlugin("", {"--metrics-address", "127.0.0.1:0"});
  ASSERT_TRUE(h.kubelet().waitForRegistrations("kubeaccel.io/coral-pcie", 1, std::chrono::seconds(10)));
  v1beta1::AllocateResponse resp;
  ASSERT_TRUE(h.kubelet().allocate("kubeaccel.io/coral-pcie", {"0000-03-00.0"}, &resp).ok());
  ASSERT_FALSE(h.kubelet().allocate("kubeaccel.io/coral-pcie", {"nope"}, &resp).ok());
  ASSERT_TRUE(h.waitForLog("metrics on http://127.0.0.1:"));
  int port = metricsPortFromLog(h.pluginLog());
  ASSERT_GT(port, 0) << h.pluginLog();
  const std::string r = R"(resource="kubeaccel.io/coral-pcie")";
  // The stand-in sees the Register call before the plugin has its answer and
  // counts it: wait (at most 10 s) for the count.
  std::string body;
  for (auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
       std::chrono::steady_clock::now() < until; std::this_thread::sleep_for(std::chrono::milliseconds(20))) {
    std::string reply = httpGet(port, "/metrics");
    body = reply.substr(reply.find("\r\n\r\n") + 4);
    if (body.find("kubeaccel_plugin_registrations_total{" + r + "} 1") != std::string::npos) break;
  }
  EXPECT_NE(body.find("kubeaccel_plugin_devices{" + r + ",health=\"Healthy\"} 1"), std::string::npos) << body;
  EXPECT_NE(body.find("kubeaccel_plugin_devices{" + r + ",health=\"Unhealthy\"} 0"), std::string::npos);
  EXPECT_NE(body.find("kubeaccel_plugin_registrations_total{" + r + "} 1"), std::string::npos);
  EXPECT_NE(body.find("kubeaccel_plugin_allocations_total{" + r + "} 1"), std::string::npos);
  EXPECT_NE(body.find("kubeaccel_plugin_allocation_failures_total{" + r + "} 1"), std::string::npos);
  EXPECT_NE(body.find("kubeaccel_plugin_listandwatch_messages_total{" + r + "}"), std::string::npos);
  bool missing = false;
  EXPECT_EQ(promtoolProblems(h.root(), body, &missing), "");
  EXPECT_EQ(h.stopPlugin(SIGTERM), 0);
  if (missing) GTEST_SKIP() << "promtool (Debian: prometheus) is not installed; the exposition was not validated";
}

TEST(AgentMetrics, CountsRequestsPerModelAndSlotAndPassesPromtool) {
  PluginHarness h;
  h.plug("movidius-ncs2-unbooted.umockdev");
  std::string config = h.writeConfig(R"({"classes": [{"name": "movidius-ncs2", "mode": "agent",
    "backend": "opencv-cpu", "slots": 2, "match": [{"subsystem": "usb", "vendor": "03e7"}]}]})");
  h.startAgent(config, {"--metrics-address", "127.0.0.1:0"});
  ASSERT_TRUE(h.waitForAgentLog("serving 2 slot socket(s)")) << h.agentLog();
  int port = metricsPortFromLog(h.agentLog());
  ASSERT_GT(port, 0) << h.agentLog();

  std::string socket = "unix://" + h.slotSocket("movidius-ncs2", "usb-1-3", 1);
  std::string out, err;
  for (int i = 0; i < 3; ++i) ASSERT_EQ(h.run({KUBEACCEL_CLI_BIN, "infer", "--socket", socket, "--model", "tiny"}, &out, &err), 0) << err;
  ASSERT_EQ(h.run({KUBEACCEL_CLI_BIN, "infer", "--socket", socket, "--model", "nope"}, &out, &err), 1);

  std::string reply = httpGet(port, "/metrics");
  ASSERT_NE(reply.find("HTTP/1.1 200"), std::string::npos) << reply;
  std::string body = reply.substr(reply.find("\r\n\r\n") + 4);
  const std::string labels = R"({resource="kubeaccel.io/movidius-ncs2",slot="usb-1-3-s1",model="tiny"})";
  EXPECT_NE(body.find("kubeaccel_agent_requests_total" + labels + " 3"), std::string::npos) << body;
  EXPECT_EQ(sampleValue(body, "kubeaccel_agent_requests_received_total" + labels), 3.0) << body;
  EXPECT_NE(body.find("kubeaccel_agent_request_duration_seconds_count" + labels + " 3"), std::string::npos);
  EXPECT_NE(body.find("kubeaccel_agent_batch_size_bucket{resource=\"kubeaccel.io/movidius-ncs2\",slot=\"usb-1-3-s1\","
                      "model=\"tiny\",le=\"1\"} 3"),
            std::string::npos)
      << body;
  EXPECT_NE(body.find("kubeaccel_agent_queue_duration_seconds"), std::string::npos);
  EXPECT_NE(body.find("kubeaccel_agent_compute_duration_seconds"), std::string::npos);

  bool missing = false;
  EXPECT_EQ(promtoolProblems(h.root(), body, &missing), "");
  EXPECT_EQ(h.stopAgent(SIGTERM), 0);
  if (missing) GTEST_SKIP() << "promtool (Debian: prometheus) is not installed; the exposition was not validated";
}

TEST(AgentMetrics, BadAddressExitsTwo) {
  PluginHarness h;
  std::string out, err;
  EXPECT_EQ(h.run({KUBEACCEL_AGENT_BIN_FOR_TESTS, "--models", h.modelsDir(), "--metrics-address", "nowhere"}, &out, &err),
            2);
  EXPECT_NE(err.find("--metrics-address"), std::string::npos) << err;
}

}  // namespace
}  // namespace kubeaccel::testing
