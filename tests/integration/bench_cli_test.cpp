// `kubeaccel bench` against the real agent on a umockdev testbed (an unbooted
// NCS2 served by the opencv-cpu backend): the sweep, its CSV and its plot,
// and the usage errors that stop it before it runs.
#include <signal.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "plugin_harness.hpp"

namespace kubeaccel::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::vector<std::string> split(const std::string& line, char sep = ',') {
  std::vector<std::string> out;
  std::string item;
  std::stringstream ss(line);
  while (std::getline(ss, item, sep)) out.push_back(item);
  return out;
}

std::vector<std::string> lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) out.push_back(l);
  return out;
}

class BenchCliTest : public ::testing::Test {
 protected:
  PluginHarness h;

  void SetUp() override {
    h.plug("movidius-ncs2-unbooted.umockdev");
    h.startAgent(h.writeConfig(R"({"classes": [{"name": "movidius-ncs2", "mode": "agent",
      "backend": "opencv-cpu", "slots": 4, "reenumerates": true, "match": [
      {"subsystem": "usb", "vendor": "03e7", "product": "2485"},
      {"subsystem": "usb", "vendor": "03e7", "product": "f63b"}]}]})"));
    ASSERT_TRUE(h.waitForAgentLog("serving 4 slot socket(s)")) << h.agentLog();
    // The device ID (serial or port path) is the discovery's business: take the one directory.
    for (const auto& e : fs::directory_iterator(h.agentDir() + "/movidius-ncs2")) slotDir_ = e.path() / "s0";
    ASSERT_TRUE(fs::exists(slotDir_ + "/inference.sock")) << slotDir_;
  }
  void TearDown() override {
    if (h.agentRunning()) {
      EXPECT_EQ(h.stopAgent(SIGTERM), 0);
    }
    if (HasFailure()) std::cerr << "---- agent log ----\n" << h.agentLog() << "----\n";
  }

  std::string socket() const { return "unix://" + slotDir_ + "/inference.sock"; }
  // What the slot directory holds besides its socket (shared-memory files left behind).
  // What the clients left where they write their region files (shm/).
  std::vector<std::string> leftInSlotDir() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(slotDir_ + "/shm")) out.push_back(e.path().filename());
    return out;
  }
  std::string slotDir_;

  // The agent goes away during the warm-up: every measured request fails.
  void expectEveryRequestFails(std::vector<std::string> mode) {
    std::string out, err;
    int rc = -1;
    mode.insert(mode.end(), {"--warmup", "1.2", "--duration", "0.3"});
    std::thread run([&] { rc = bench(mode, &out, &err); });
    std::this_thread::sleep_for(400ms);  // past ModelMetadata, inside the warm-up
    EXPECT_EQ(h.stopAgent(SIGTERM), 0);
    run.join();
    EXPECT_EQ(rc, 1) << out << err;
    EXPECT_NE(err.find("every request failed"), std::string::npos) << err;
    EXPECT_NE(err.find("UNAVAILABLE"), std::string::npos) << "the first error is reported: " << err;
  }

  int bench(std::vector<std::string> args, std::string* out, std::string* err) {
    args.insert(args.begin(), {KUBEACCEL_CLI_BIN, "bench", "--socket", socket(), "--model", "tiny"});
    return h.run(args, out, err);
  }
};

TEST_F(BenchCliTest, SweepsBatchSizesAndWritesCsvAndPlot) {
  std::string csv = h.root() + "/bench.csv", png = h.root() + "/bench.png", out, err;
  ASSERT_EQ(bench({"--batch", "1,4", "--concurrency", "2", "--duration", "1", "--warmup", "0", "--csv", csv, "--plot",
                   png},
                  &out, &err),
            0)
      << out << err;
  // The table on stdout names every statistic.
  for (const char* col : {"predictions", "failures", "mean ms", "min ms", "max ms", "median ms", "p99 ms",
                          "stddev ms", "images/s"})
    EXPECT_NE(out.find(col), std::string::npos) << col << " missing from:\n" << out;

  auto rows = lines(csv);
  ASSERT_EQ(rows.size(), 3u) << "a header and one row per combination";
  auto header = split(rows[0]);
  const std::vector<std::string> expected = {
      "model",           "transport",        "batch",          "concurrency",      "requests",
      "predictions",     "failures",         "duration_s",     "latency_mean_ms",  "latency_min_ms",
      "latency_max_ms",  "latency_median_ms", "latency_p99_ms", "latency_stddev_ms", "images_per_s"};
  ASSERT_EQ(header, expected);
  auto col = [&](const std::vector<std::string>& row, const std::string& name) {
    auto it = std::find(header.begin(), header.end(), name);
    return row.at(static_cast<size_t>(it - header.begin()));
  };
  for (int k = 1; k <= 2; ++k) {
    auto row = split(rows[static_cast<size_t>(k)]);
    ASSERT_EQ(row.size(), header.size()) << rows[static_cast<size_t>(k)];
    EXPECT_EQ(col(row, "model"), "tiny");
    EXPECT_EQ(col(row, "transport"), "raw");
    EXPECT_EQ(col(row, "batch"), k == 1 ? "1" : "4");
    EXPECT_EQ(col(row, "concurrency"), "2");
    EXPECT_EQ(col(row, "failures"), "0");
    long requests = std::stol(col(row, "requests"));
    EXPECT_GT(requests, 0);
    EXPECT_EQ(std::stol(col(row, "predictions")), requests * (k == 1 ? 1 : 4));
    EXPECT_GT(std::stod(col(row, "images_per_s")), 0.0);
    EXPECT_GE(std::stod(col(row, "duration_s")), 1.0);
    double min = std::stod(col(row, "latency_min_ms")), median = std::stod(col(row, "latency_median_ms"));
    double p99 = std::stod(col(row, "latency_p99_ms")), max = std::stod(col(row, "latency_max_ms"));
    EXPECT_GT(min, 0.0);
    EXPECT_LE(min, median);
    EXPECT_LE(median, p99);
    EXPECT_LE(p99, max);
  }

  std::ifstream in(png, std::ios::binary);
  ASSERT_TRUE(in) << "no plot at " << png << "\n" << err;
  char sig[8] = {};
  in.read(sig, 8);
  EXPECT_EQ(std::string(sig, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_EQ(leftInSlotDir(), std::vector<std::string>{});
}

TEST_F(BenchCliTest, SharedMemoryRunLeavesNoRegionBehind) {
  std::string out, err;
  ASSERT_EQ(bench({"--shm", "--batch", "2", "--concurrency", "2", "--duration", "0.3", "--warmup", "0"}, &out, &err),
            0)
      << out << err;
  EXPECT_NE(out.find("shared memory"), std::string::npos) << out;
  EXPECT_EQ(leftInSlotDir(), std::vector<std::string>{}) << "each client's region file is removed";
}

TEST_F(BenchCliTest, BadUsageExitsTwoWithOneLine) {
  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  const std::vector<Case> cases = {
      {{"--batch", "0"}, "--batch"},
      {{"--batch", "1,x"}, "--batch"},
      {{"--batch", "1,"}, "--batch"},
      {{"--batch", "100"}, "must be 1 to 64"},  // tiny's max_batch_size is 64: asked before the run
      {{"--concurrency", "0"}, "--concurrency"},
      {{"--duration", "0"}, "--duration"},
      {{"--warmup", "-1"}, "--warmup"},
      {{"--channels", "many"}, "--channels"},
      {{"--frobnicate"}, "--frobnicate"},
  };
  for (const auto& c : cases) {
    std::string out, err;
    EXPECT_EQ(bench(c.args, &out, &err), 2) << c.args[0] << ": " << out << err;
    EXPECT_NE(err.find(c.says), std::string::npos) << err;
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << "one line: " << err;
    EXPECT_EQ(out, "") << "nothing ran";
  }
}

TEST_F(BenchCliTest, MissingGnuplotFailsButTheCsvIsWritten) {
  std::string csv = h.root() + "/nognuplot.csv", out, err;
  std::vector<std::string> argv = {"/usr/bin/env", "PATH=" + h.root() + "/empty-path", KUBEACCEL_CLI_BIN, "bench",
                                   "--socket", socket(), "--model", "tiny", "--duration", "0.2", "--warmup", "0",
                                   "--csv", csv, "--plot", h.root() + "/nognuplot.png"};
  EXPECT_EQ(h.run(argv, &out, &err), 1) << out << err;
  EXPECT_NE(err.find("gnuplot is not installed"), std::string::npos) << err;
  EXPECT_EQ(lines(csv).size(), 2u) << "header and one row";
  EXPECT_FALSE(fs::exists(h.root() + "/nognuplot.png"));
}

// With --stream each client sends every request on one ModelStreamInfer
// stream: the agent's log counts each stream's requests when it ends.
TEST_F(BenchCliTest, StreamModeSendsEachClientsRequestsOnOneStream) {
  std::string csv = h.root() + "/stream.csv", out, err;
  ASSERT_EQ(bench({"--stream", "--shm", "--concurrency", "2", "--duration", "0.5", "--warmup", "0", "--csv", csv},
                  &out, &err),
            0)
      << out << err;
  EXPECT_NE(out.find("one ModelStreamInfer stream per client"), std::string::npos) << out;
  auto rows = lines(csv);
  ASSERT_EQ(rows.size(), 2u);
  auto header = split(rows[0]), row = split(rows[1]);
  auto col = [&](const std::string& name) {
    return row.at(static_cast<size_t>(std::find(header.begin(), header.end(), name) - header.begin()));
  };
  EXPECT_EQ(col("transport"), "shm-stream");
  EXPECT_EQ(col("failures"), "0");
  const long requests = std::stol(col("requests"));
  EXPECT_GT(requests, 0);

  const std::string said = "a ModelStreamInfer stream ended after ";
  std::vector<long> perStream;
  for (auto deadline = std::chrono::steady_clock::now() + 5s; std::chrono::steady_clock::now() < deadline;
       std::this_thread::sleep_for(50ms)) {
    perStream.clear();
    std::string log = h.agentLog();
    for (size_t at = log.find(said); at != std::string::npos; at = log.find(said, at + 1))
      perStream.push_back(std::stol(log.substr(at + said.size())));
    if (perStream.size() >= 2) break;
  }
  ASSERT_EQ(perStream.size(), 2u) << "one stream per client:\n" << h.agentLog();
  EXPECT_EQ(perStream[0] + perStream[1], requests + 2)
      << "every measured request went on a stream (no warm-up), after the one each client sends to check it";
  EXPECT_EQ(leftInSlotDir(), std::vector<std::string>{});
}

// A slot takes at most --max-streams streams (16 by default): a client whose
// stream is refused does not start, and the run says why.
TEST_F(BenchCliTest, AStreamPastTheSlotsLimitStopsTheRunWithTheReason) {
  std::string out, err;
  EXPECT_EQ(bench({"--stream", "--concurrency", "17", "--duration", "0.3", "--warmup", "0"}, &out, &err), 1)
      << out << err;
  EXPECT_NE(err.find("could not start"), std::string::npos) << err;
  EXPECT_NE(err.find("RESOURCE_EXHAUSTED"), std::string::npos) << err;
  EXPECT_NE(err.find("stream"), std::string::npos) << err;
}

TEST_F(BenchCliTest, EveryRequestFailingExitsOne) { expectEveryRequestFails({}); }

TEST_F(BenchCliTest, EveryRequestFailingOnAStreamExitsOne) { expectEveryRequestFails({"--stream"}); }

}  // namespace
}  // namespace kubeaccel::testing
