// fairness_bench: one device shared by two pods (issue 10 §6). A victim on
// slot s1 sends SqueezeNet batch-1 requests, one at a time, from one client;
// a neighbour on slot s0 floods the same device:
//   alone      the victim alone (its baseline)
//   16x1       plus 16 neighbour clients sending batch 1   (target: victim p50 <= 3x alone)
//   8x32       plus 8 neighbour clients sending batch 32   (the victim's p99 is reported;
//              twice as long, as a batch-32 run is charged when it ends)
// The agent is the real kubeaccel-agent (opencv-cpu, SqueezeNet as generated:
// dynamic batching, max batch 32) on this machine's sysfs; the clients are
// cli/bench_command's RequestLoop, each with its own connection. Next to the
// latencies, each slot's compute time as the agent charged it
// (kubeaccel_agent_compute_seconds_total, read from its /metrics) and its share.
// Writes fairness.csv, fairness-latency.csv (every victim sample) and its rows
// into summary.csv (replacing earlier "fairness: " rows). A missed target is a
// finding; the exit status is 1 only when it could not run.
#include <httplib.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <sstream>
#include <thread>

#include "agent_process.hpp"
#include "bench_flags.hpp"
#include "bench_command.hpp"
#include "inference_client.hpp"
#include "report.hpp"
#include "stats.hpp"
#include "util/args.hpp"

namespace kubeaccel::bench {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr const char* kUsage = R"(Usage: fairness_bench [FLAGS]

A victim (slot s1, one client, SqueezeNet batch 1) alone, then next to a
neighbour (slot s0) of 16 batch-1 clients, then of 8 batch-32 clients, on one
device of a real kubeaccel-agent. Prints the victim's latency, each slot's
requests and the compute time the agent charged each slot.

Flags:
  --seconds S   length of each scenario, twice that with batch 32 (default 10)
  --models DIR  model repository (default: the build's generated models)
  --agent FILE  the agent binary (default: the build's)
  --out DIR     where the CSV files go (default the source tree's bench/results)
  --help
)";

// Compute seconds the agent charged each slot (by slot ID), from /metrics.
std::map<std::string, double> chargedCompute(int port) {
  httplib::Client http("127.0.0.1", port);
  http.set_read_timeout(10, 0);
  auto res = http.Get("/metrics");
  if (!res || res->status != 200)
    throw std::runtime_error("GET http://127.0.0.1:" + std::to_string(port) + "/metrics failed" +
                             (res ? ": HTTP " + std::to_string(res->status) : ""));
  std::map<std::string, double> out;
  std::istringstream body(res->body);
  const std::string family = "kubeaccel_agent_compute_seconds_total{";
  for (std::string line; std::getline(body, line);) {
    if (line.rfind(family, 0) != 0) continue;
    auto at = line.find("slot=\"");
    auto close = line.rfind('}');
    if (at == std::string::npos || close == std::string::npos) continue;
    at += 6;
    out[line.substr(at, line.find('"', at) - at)] += std::stod(line.substr(close + 1));
  }
  return out;
}

// The slot ID ("<device>-s<k>") that ends in -s<k>.
double forSlot(const std::map<std::string, double>& m, int slot) {
  const std::string suffix = "-s" + std::to_string(slot);
  for (const auto& [id, v] : m)
    if (id.size() > suffix.size() && id.compare(id.size() - suffix.size(), suffix.size(), suffix) == 0) return v;
  return 0;
}

struct Side {
  int clients = 0, batch = 1;
  std::vector<std::unique_ptr<RequestLoop>> loops;
  std::vector<std::vector<double>> ms;  // per client: latencies of the successful requests
  std::atomic<uint64_t> failures{0};
  std::string firstError;
};

struct Scenario {
  std::string name;
  int neighbourClients, neighbourBatch;
  Distribution victim;
  uint64_t victimRequests = 0, neighbourRequests = 0, failures = 0;
  double compute[2] = {0, 0};  // s0 (neighbour), s1 (victim), seconds
  std::vector<double> victimMs;
};

struct Options {
  std::string out = KUBEACCEL_BENCH_RESULTS;
  std::string models = KUBEACCEL_MODELS_DIR;
  std::string agent = KUBEACCEL_AGENT_BIN;
  double seconds = 10;
};

void runScenario(const AgentProcess& agent, const inference::ModelMetadataResponse& meta, double seconds,
                 Scenario& sc) {
  auto makeSide = [&](int slot, int clients, int batch) {
    auto side = std::make_unique<Side>();
    side->clients = clients;
    side->batch = batch;
    for (int i = 0; i < clients; ++i) {
      auto l = std::make_unique<RequestLoop>(benchChannel(agent.socket(slot), true), agent.socket(slot), meta, batch,
                                             false, 120000ms);
      if (grpc::Status s = l->prepare(); !s.ok())
        throw std::runtime_error("client of slot s" + std::to_string(slot) + ": " + s.error_message());
      // prepare() connected; one request warms the worker's runner for this batch size.
      if (grpc::Status s = i == 0 ? l->send() : grpc::Status::OK; !s.ok())
        throw std::runtime_error("warm-up request on slot s" + std::to_string(slot) + ": " + s.error_message());
      side->loops.push_back(std::move(l));
    }
    side->ms.resize(static_cast<size_t>(clients));
    return side;
  };
  auto victim = makeSide(1, 1, 1);
  auto neighbour = makeSide(0, sc.neighbourClients, sc.neighbourBatch);
  const int port = agent.metricsPort();
  auto before = chargedCompute(port);
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (Side* side : {neighbour.get(), victim.get()})
    for (int i = 0; i < side->clients; ++i)
      threads.emplace_back([side, i, &stop] {
        auto& loop = *side->loops[static_cast<size_t>(i)];
        auto& ms = side->ms[static_cast<size_t>(i)];
        while (!stop.load()) {
          auto t0 = Clock::now();
          grpc::Status s = loop.send();
          auto t1 = Clock::now();
          if (stop.load()) break;  // the window has closed: not counted
          if (s.ok()) {
            ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
          } else if (side->failures++ == 0) {
            side->firstError = s.error_message();
          }
        }
      });
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  // Read the charges at the end of the window; requests still in flight then
  // finish afterwards and are not counted on either side.
  auto after = chargedCompute(port);
  stop = true;
  for (auto& t : threads) t.join();
  for (int slot : {0, 1}) sc.compute[slot] = forSlot(after, slot) - forSlot(before, slot);
  sc.victimMs = victim->ms[0];
  sc.victim = distribution(sc.victimMs);
  sc.victimRequests = sc.victimMs.size();
  for (const auto& v : neighbour->ms) sc.neighbourRequests += v.size();
  sc.failures = victim->failures + neighbour->failures;
  if (sc.failures)
    std::fprintf(stderr, "fairness_bench: %s: %llu requests failed; the first: %s\n", sc.name.c_str(),
                 static_cast<unsigned long long>(sc.failures),
                 (victim->failures ? victim->firstError : neighbour->firstError).c_str());
}

int run(const Options& o) {
  std::filesystem::create_directories(o.out);
  Report summary("fairness_bench");
  const std::string loadBefore = loadAverage();
  AgentSetup setup;
  setup.binary = o.agent;
  setup.backendDir = KUBEACCEL_BACKENDS_DIR;
  setup.models = o.models;
  setup.log = o.out + "/fairness_bench-agent.log";
  setup.extraArgs = {"--metrics-address", "127.0.0.1:0"};
  AgentProcess agent(setup);
  if (agent.metricsPort() < 0) throw std::runtime_error("the agent logged no metrics address; see " + setup.log);
  InferenceClient client("unix://" + agent.socket(1), 20s);
  inference::ModelMetadataResponse meta;
  if (grpc::Status s = client.metadata("squeezenet", &meta); !s.ok())
    throw std::runtime_error("ModelMetadata squeezenet: " + s.error_message());
  std::printf("fairness_bench: agent pid %d (opencv-cpu, 2 slots), %.0f s per scenario; victim: slot s1, one client, "
              "SqueezeNet batch 1; neighbour: slot s0\n",
              agent.pid(), o.seconds);

  std::vector<Scenario> scenarios = {{"alone", 0, 1, {}, 0, 0, 0, {}, {}},
                                     {"16x1", 16, 1, {}, 0, 0, 0, {}, {}},
                                     {"8x32", 8, 32, {}, 0, 0, 0, {}, {}}};
  CsvFile csv(o.out + "/fairness.csv", {"scenario", "slot", "clients", "batch", "requests", "rows", "p50_ms", "p99_ms",
                                        "compute_s", "compute_share", "failures"});
  CsvFile samples(o.out + "/fairness-latency.csv", {"scenario", "latency_ms"});
  for (auto& sc : scenarios) {
    // A batch-32 run takes 32 rows' time and is charged when it ends: a
    // longer window for that neighbour.
    runScenario(agent, meta, sc.neighbourBatch > 1 ? 2 * o.seconds : o.seconds, sc);
    double total = sc.compute[0] + sc.compute[1];
    auto share = [&](int slot) { return total > 0 ? sc.compute[slot] / total : 0; };
    std::printf("  %-5s victim: %s; %llu requests | neighbour (%d x batch %d): %llu requests, %llu rows | compute "
                "charged: victim %.2f s (%.0f%%), neighbour %.2f s (%.0f%%)\n",
                sc.name.c_str(), describe(sc.victim, "ms", 1).c_str(), static_cast<unsigned long long>(sc.victimRequests),
                sc.neighbourClients, sc.neighbourBatch, static_cast<unsigned long long>(sc.neighbourRequests),
                static_cast<unsigned long long>(sc.neighbourRequests * static_cast<uint64_t>(sc.neighbourBatch)),
                sc.compute[1], 100 * share(1), sc.compute[0], 100 * share(0));
    csv << std::vector<std::string>{sc.name, "s1-victim", "1", "1", std::to_string(sc.victimRequests),
                                    std::to_string(sc.victimRequests), fixed(sc.victim.p50, 2), fixed(sc.victim.p99, 2),
                                    fixed(sc.compute[1], 3), fixed(share(1), 3), std::to_string(sc.failures)};
    if (sc.neighbourClients > 0)
      csv << std::vector<std::string>{sc.name, "s0-neighbour", std::to_string(sc.neighbourClients),
                                      std::to_string(sc.neighbourBatch), std::to_string(sc.neighbourRequests),
                                      std::to_string(sc.neighbourRequests * static_cast<uint64_t>(sc.neighbourBatch)),
                                      "", "", fixed(sc.compute[0], 3), fixed(share(0), 3), ""};
    for (double ms : sc.victimMs) samples << std::vector<std::string>{sc.name, fixed(ms, 3)};
    summary.info("victim p50 / p99, " + sc.name, fixed(sc.victim.p50, 1) + " / " + fixed(sc.victim.p99, 1), "ms");
    if (sc.neighbourClients > 0)
      summary.info("compute charged victim : neighbour, " + sc.name,
                   fixed(sc.compute[1], 2) + " : " + fixed(sc.compute[0], 2) + " s (" + fixed(100 * share(1), 0) +
                       "% : " + fixed(100 * share(0), 0) + "%)",
                   "");
    if (sc.failures) summary.finding(sc.name + ": " + std::to_string(sc.failures) + " requests failed");
  }
  double ratio = scenarios[0].victim.p50 > 0 ? scenarios[1].victim.p50 / scenarios[0].victim.p50 : 0;
  summary.target("victim p50 with a 16-client neighbour / alone", fixed(ratio, 2), "x", "<= 3", ratio <= 3);
  summary.info("victim p99 with an 8 x batch-32 neighbour", fixed(scenarios[2].victim.p99, 1), "ms");
  summary.info("machine: 1-minute load average before / after", loadBefore + " / " + loadAverage(), "");
  summary.writeCsv(o.out + "/fairness-summary.csv");
  summary.mergeInto(o.out + "/summary.csv", "fairness: ");
  summary.print();
  return 0;
}

}  // namespace
}  // namespace kubeaccel::bench

int main(int argc, char** argv) {
  using namespace kubeaccel;
  using namespace kubeaccel::bench;
  Options o;
  auto parse = [&] {
    Args args(argc, argv, 1, {"seconds", "models", "agent", "out"}, {"help"});
    if (args.has("help")) {
      std::cout << kUsage;
      return false;
    }
    if (!args.positional().empty()) throw UsageError("unexpected argument '" + args.positional()[0] + "'");
    o.seconds = positiveNumber(args, "seconds", o.seconds);
    o.models = args.get("models", o.models);
    o.agent = args.get("agent", o.agent);
    o.out = args.get("out", o.out);
    return true;
  };
  return benchMain("fairness_bench", parse, [&] { return run(o); });
}
