// agent_bench: the agent's figures from the issue, measured side by side in
// one run against OpenCV DNN in this process on the same model file and the
// same input:
//   1. SqueezeNet end to end through the slot socket, raw contents  (p50 <= 1.05x in-process)
//   2. the same through shared memory                               (p50 <= 1.01x in-process)
//   3. overhead of a small request: tiny, socket p50 - in-process p50 (< 60 us), next to
//      a ServerLive round trip (the floor of any unary call on the socket)
//   4. throughput of 8 concurrent clients (SqueezeNet, batch 1)      (>= 0.95x 8 in-process threads,
//                                                                     each with its own cv::dnn::Net)
// The agent is the real kubeaccel-agent binary on this machine's real sysfs: the
// benchmark writes a config whose one agent-mode class matches the first PCI
// device in /sys/bus/pci/devices and serves the generated models from a
// temporary agent directory. Measurements alternate in interleaved rounds
// (in-process, raw, shm, in a rotating order) so machine noise hits all alike:
// for SqueezeNet a round is one request per mode. (Blocks of requests per mode
// let the scheduler treat them differently on a busy machine: a run of
// back-to-back in-process forwards is CPU-bound without a break, while a socket
// request sleeps briefly while it waits, and the two drifted apart by 30-50%.)
// The client side is cli/bench_command's RequestLoop, the code `kubeaccel bench`
// runs. The in-process baseline keeps OpenCV's default thread settings, as the
// agent does (neither calls cv::setNumThreads).
//
// The agent's own ModelStatistics (queue wait, compute, batch sizes) are read
// around each figure to say where the time goes.
// Writes agent-latency.csv (every sample), agent-throughput.csv (every round),
// agent-summary.csv, and its rows into summary.csv (replacing earlier "agent: " rows).
// Missed targets are findings; the exit status is 1 only when it could not run.
#include <unistd.h>

#include <opencv2/core.hpp>
#include <opencv2/core/utility.hpp>
#include <opencv2/dnn.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <barrier>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "agent_process.hpp"
#include "bench_flags.hpp"
#include "bench_command.hpp"
#include "inference_client.hpp"
#include "report.hpp"
#include "stats.hpp"
#include "util/args.hpp"

namespace kubeaccel::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr const char* kUsage = R"(Usage: agent_bench [FLAGS]

The agent's figures: SqueezeNet through the slot socket (raw contents and
shared memory) and a small request's overhead, each against OpenCV DNN in this
process on the same input, and the throughput of concurrent clients against
as many in-process threads. Starts the real kubeaccel-agent on this machine's
sysfs (one agent-mode class matching the first PCI device) with a temporary
agent directory.

Flags:
  --squeezenet N      SqueezeNet requests per mode, one per mode in turn (default 300)
  --tiny-rounds N     interleaved rounds of the tiny model (default 30)
  --tiny N            tiny requests per mode and round (default 300)
  --clients N         concurrent clients / in-process threads (default 8)
  --throughput-rounds N   interleaved throughput rounds (default 10)
  --seconds S         seconds per throughput mode and round (default 1.2)
  --models DIR        model repository (default: the build's generated models)
  --agent FILE        the agent binary (default: the build's)
  --out DIR           where the CSV files go (default the source tree's bench/results)
  --help
)";

const std::string kPrefix = "agent: ";


// ---------------------------------------------------------------------------
// Both sides of the comparison

// OpenCV DNN in this process, as the agent's opencv-cpu backend runs it: the
// same backend and target, setInput from the request's bytes, forward by output name.
class InProcess {
 public:
  InProcess(const std::string& onnx, const inference::ModelMetadataResponse& meta,
            const std::vector<ClientTensor>& inputs)
      : net_(cv::dnn::readNetFromONNX(onnx)), inputs_(inputs) {
    net_.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
    net_.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
    for (auto& t : inputs_) {
      std::vector<int> dims(t.shape.begin(), t.shape.end());
      blobs_.emplace_back(static_cast<int>(dims.size()), dims.data(), CV_32F, t.bytes.data());
    }
    for (const auto& o : meta.outputs()) outNames_.push_back(o.name());
  }
  void run() {
    for (size_t i = 0; i < inputs_.size(); ++i) net_.setInput(blobs_[i], inputs_[i].name);
    net_.forward(outs_, outNames_);
  }
  std::string_view output(size_t i) const {
    const cv::Mat& m = outs_.at(i);
    return {reinterpret_cast<const char*>(m.data), m.total() * m.elemSize()};
  }

 private:
  cv::dnn::Net net_;
  std::vector<ClientTensor> inputs_;  // owns the bytes the blobs view
  std::vector<cv::Mat> blobs_;
  std::vector<std::string> outNames_;
  std::vector<cv::Mat> outs_;
};

std::string modelFile(const std::string& models, const std::string& name) {
  int best = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(models + "/" + name, ec)) {
    std::string v = e.path().filename().string();
    if (!v.empty() && std::all_of(v.begin(), v.end(), ::isdigit) && fs::exists(e.path() / "model.onnx"))
      best = std::max(best, std::stoi(v));
  }
  if (best == 0) throw std::runtime_error("no " + models + "/" + name + "/<version>/model.onnx");
  return models + "/" + name + "/" + std::to_string(best) + "/model.onnx";
}

float maxAbsDiff(std::string_view a, std::string_view b) {
  if (a.size() != b.size() || a.empty()) return INFINITY;
  float m = 0;
  for (size_t i = 0; i + sizeof(float) <= a.size(); i += sizeof(float)) {
    float x, y;
    std::memcpy(&x, a.data() + i, sizeof x);
    std::memcpy(&y, b.data() + i, sizeof y);
    float d = std::fabs(x - y);
    if (!(d <= m)) m = std::isnan(d) ? INFINITY : d;
  }
  return m;
}

// The agent's own account of a model (ModelStatistics): counts and nanoseconds.
struct AgentStats {
  uint64_t inferences = 0, executions = 0, successCount = 0, successNs = 0, queueCount = 0, queueNs = 0,
           computeCount = 0, computeNs = 0;
  AgentStats operator-(const AgentStats& o) const {
    return {inferences - o.inferences, executions - o.executions, successCount - o.successCount,
            successNs - o.successNs,   queueCount - o.queueCount, queueNs - o.queueNs,
            computeCount - o.computeCount, computeNs - o.computeNs};
  }
  double meanUs(uint64_t ns, uint64_t n) const { return n ? static_cast<double>(ns) / static_cast<double>(n) / 1e3 : 0; }
};

AgentStats agentStats(const std::string& socket, const std::string& model) {
  auto stub = inference::GRPCInferenceService::NewStub(benchChannel(socket, false));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 10s);
  inference::ModelStatisticsRequest req;
  req.set_name(model);
  inference::ModelStatisticsResponse resp;
  AgentStats s;
  if (!stub->ModelStatistics(&ctx, req, &resp).ok() || resp.model_stats_size() == 0) return s;
  const auto& m = resp.model_stats(0);
  const auto& is = m.inference_stats();
  return {m.inference_count(),  m.execution_count(),  is.success().count(),       is.success().ns(),
          is.queue().count(),   is.queue().ns(),      is.compute_infer().count(), is.compute_infer().ns()};
}

// ---------------------------------------------------------------------------
// Measurements

struct Mode {
  std::string name;
  std::function<bool()> once;  // one request; false when it failed
  std::vector<double> us;      // latencies of the successful ones
  std::vector<int> round;      // the round of each sample
  uint64_t failures = 0;
};

// `rounds` rounds; in each, every mode runs `perRound` requests back to back,
// the modes in an order rotated by one each round.
// A progress line on a terminal; nothing in a log.
const bool kProgress = ::isatty(STDERR_FILENO) == 1;

void progress(const std::string& text) {
  if (!kProgress) return;
  std::fprintf(stderr, "\r\033[K%s", text.c_str());
  std::fflush(stderr);
}

void interleave(std::vector<Mode>& modes, int rounds, int perRound, const std::string& label) {
  for (int r = 0; r < rounds; ++r) {
    if (r % 10 == 0) progress(label + ": round " + std::to_string(r + 1) + "/" + std::to_string(rounds));
    for (size_t k = 0; k < modes.size(); ++k) {
      Mode& m = modes[(static_cast<size_t>(r) + k) % modes.size()];
      for (int i = 0; i < perRound; ++i) {
        auto t0 = Clock::now();
        bool ok = m.once();
        auto t1 = Clock::now();
        if (!ok) {
          ++m.failures;
          continue;
        }
        m.us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
        m.round.push_back(r);
      }
    }
  }
  progress("");
}

// `threads` threads call once(i) back to back for `seconds` after a common
// start; returns completed calls per second over the window (from the start to
// the last completion).
struct Throughput {
  uint64_t done = 0, failures = 0;
  double seconds = 0;
  double perSecond() const { return seconds > 0 ? static_cast<double>(done) / seconds : 0; }
};

Throughput concurrently(int threads, double seconds, const std::function<bool(int)>& once) {
  Clock::time_point start{};
  auto onStart = [&]() noexcept { start = Clock::now(); };
  std::barrier sync(threads, onStart);
  std::vector<uint64_t> done(static_cast<size_t>(threads)), failed(static_cast<size_t>(threads));
  std::vector<Clock::time_point> last(static_cast<size_t>(threads));
  const auto window = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  std::vector<std::thread> pool;
  for (int i = 0; i < threads; ++i)
    pool.emplace_back([&, i] {
      auto k = static_cast<size_t>(i);
      sync.arrive_and_wait();
      const auto end = start + window;
      while (Clock::now() < end) {
        if (once(i)) ++done[k];
        else ++failed[k];
        last[k] = Clock::now();
      }
    });
  for (auto& t : pool) t.join();
  Throughput r;
  Clock::time_point end = start;
  for (size_t k = 0; k < done.size(); ++k) {
    r.done += done[k];
    r.failures += failed[k];
    end = std::max(end, last[k]);
  }
  r.seconds = std::chrono::duration<double>(end - start).count();
  return r;
}

std::string ratioText(double r) { return fixed(r, 3); }

// The median over rounds of (b's median in the round) / (a's median in the round):
// a ratio that slow drifts of the machine's load cancel out of.
double pairedRatio(const Mode& a, const Mode& b, int rounds) {
  std::vector<double> ratios;
  for (int r = 0; r < rounds; ++r) {
    std::vector<double> x, y;
    for (size_t i = 0; i < a.us.size(); ++i)
      if (a.round[i] == r) x.push_back(a.us[i]);
    for (size_t i = 0; i < b.us.size(); ++i)
      if (b.round[i] == r) y.push_back(b.us[i]);
    if (!x.empty() && !y.empty()) ratios.push_back(distribution(y).p50 / distribution(x).p50);
  }
  return distribution(ratios).p50;
}

// ---------------------------------------------------------------------------

struct Options {
  std::string out = KUBEACCEL_BENCH_RESULTS;
  std::string models = KUBEACCEL_MODELS_DIR;
  std::string agent = KUBEACCEL_AGENT_BIN;
  int squeezeRequests = 300, tinyRounds = 30, tinyPerRound = 300, clients = 8, throughputRounds = 10;
  double seconds = 1.2;
};

// "pthreads", "TBB (ver 2021.8 interface 12080)", ...: the "Parallel framework" line of OpenCV's build information.
std::string parallelFramework() {
  std::stringstream info(cv::getBuildInformation());
  for (std::string line; std::getline(info, line);)
    if (auto pos = line.find("Parallel framework:"); pos != std::string::npos) {
      std::string v = line.substr(pos + 19);
      v.erase(0, v.find_first_not_of(' '));
      return v;
    }
  return "unknown";
}

int run(const Options& o) {
  fs::create_directories(o.out);
  Report summary("agent_bench");
  std::printf("agent_bench: OpenCV %s, parallel framework '%s', %d threads (OpenCV defaults, as in the agent); %u CPUs\n",
              CV_VERSION, parallelFramework().c_str(), cv::getNumThreads(), std::thread::hardware_concurrency());
  summary.info("machine: CPUs / OpenCV threads (defaults, agent and baseline)",
               std::to_string(std::thread::hardware_concurrency()) + " / " + std::to_string(cv::getNumThreads()), "");
  const std::string loadBefore = loadAverage();

  AgentSetup setup;
  setup.binary = o.agent;
  setup.backendDir = KUBEACCEL_BACKENDS_DIR;
  setup.models = o.models;
  setup.log = o.out + "/agent_bench-agent.log";
  AgentProcess agent(setup);
  std::printf("agent: pid %d, class bench-cpu matching PCI %s (%s:%s), slot socket %s\n", agent.pid(),
              agent.device().address.c_str(), agent.device().vendor.c_str(), agent.device().device.c_str(),
              agent.socket(0).c_str());
  const std::string socket = agent.socket(0);

  // Metadata and inputs, as `kubeaccel bench` makes them.
  InferenceClient client("unix://" + socket, 20s);
  inference::ModelMetadataResponse squeezeMeta, tinyMeta;
  for (auto [name, meta] : {std::pair{"squeezenet", &squeezeMeta}, std::pair{"tiny", &tinyMeta}})
    if (grpc::Status s = client.metadata(name, meta); !s.ok())
      throw std::runtime_error(std::string("ModelMetadata ") + name + ": " + s.error_message());
  auto squeezeIn = InferenceClient::randomInputs(squeezeMeta, 1);
  auto tinyIn = InferenceClient::randomInputs(tinyMeta, 1);

  InProcess squeezeLocal(modelFile(o.models, "squeezenet"), squeezeMeta, squeezeIn);
  InProcess tinyLocal(modelFile(o.models, "tiny"), tinyMeta, tinyIn);
  auto loop = [&](const inference::ModelMetadataResponse& meta, bool shm) {
    auto l = std::make_unique<RequestLoop>(benchChannel(socket, true), socket, meta, 1, shm, 60000ms);
    if (grpc::Status s = l->prepare(); !s.ok())
      throw std::runtime_error("client for " + meta.name() + (shm ? " (shm)" : "") + ": " + s.error_message());
    return l;
  };
  auto squeezeRaw = loop(squeezeMeta, false), squeezeShm = loop(squeezeMeta, true);
  auto tinyRaw = loop(tinyMeta, false), tinyShm = loop(tinyMeta, true);

  // Same answers on both sides (and a warm-up of each).
  for (int i = 0; i < 5; ++i) {
    squeezeLocal.run();
    tinyLocal.run();
    for (auto* l : {squeezeRaw.get(), squeezeShm.get(), tinyRaw.get(), tinyShm.get()})
      if (grpc::Status s = l->send(); !s.ok()) throw std::runtime_error("warm-up request: " + s.error_message());
  }
  float diff = 0;
  for (auto [local, l] : {std::pair{&squeezeLocal, squeezeRaw.get()}, std::pair{&squeezeLocal, squeezeShm.get()},
                          std::pair{&tinyLocal, tinyRaw.get()}, std::pair{&tinyLocal, tinyShm.get()}})
    diff = std::max(diff, maxAbsDiff(local->output(0), l->output(0)));
  std::printf("outputs: agent (raw and shm) vs in-process, max |diff| = %g\n\n", diff);
  summary.info("outputs, agent vs in-process, max |diff|", fixed(diff, 7), "");
  if (!(diff <= 1e-5f)) summary.finding("the agent's outputs differ from in-process OpenCV by " + fixed(diff, 7));

  std::vector<std::pair<std::string, const std::vector<Mode>*>> latencies;  // for agent-latency.csv
  auto keep = [&](const std::string& model, const std::vector<Mode>& modes) { latencies.push_back({model, &modes}); };
  auto sendOk = [](RequestLoop& l) { return l.send().ok(); };

  // 1 + 2: SqueezeNet latency.
  AgentStats before = agentStats(socket, "squeezenet");
  std::vector<Mode> squeeze = {
      {"in-process", [&] { squeezeLocal.run(); return true; }, {}, {}, 0},
      {"socket-raw", [&] { return sendOk(*squeezeRaw); }, {}, {}, 0},
      {"socket-shm", [&] { return sendOk(*squeezeShm); }, {}, {}, 0},
  };
  interleave(squeeze, o.squeezeRequests, 1, "squeezenet latency");
  AgentStats during = agentStats(socket, "squeezenet") - before;
  keep("squeezenet", squeeze);
  std::printf("SqueezeNet, batch 1, one client, %d requests per mode, the modes in turn (ms):\n", o.squeezeRequests);
  std::vector<Distribution> sd;
  for (auto& m : squeeze) {
    std::vector<double> ms;
    for (double u : m.us) ms.push_back(u / 1000);
    sd.push_back(distribution(ms));
    std::printf("  %-11s %s%s\n", m.name.c_str(), describe(sd.back(), "ms", 2).c_str(),
                m.failures ? ("  FAILED " + std::to_string(m.failures)).c_str() : "");
    summary.info("SqueezeNet " + m.name + " latency p50 / p99", fixed(sd.back().p50, 2) + " / " + fixed(sd.back().p99, 2),
                 "ms");
  }
  double rawRatio = sd[1].p50 / sd[0].p50, shmRatio = sd[2].p50 / sd[0].p50;
  double rawPaired = pairedRatio(squeeze[0], squeeze[1], o.squeezeRequests),
         shmPaired = pairedRatio(squeeze[0], squeeze[2], o.squeezeRequests);
  std::printf("  ratios to in-process: raw p50 %.3fx p99 %.3fx min %.3fx (paired per round %.3fx); "
              "shm p50 %.3fx p99 %.3fx min %.3fx (paired %.3fx)\n",
              rawRatio, sd[1].p99 / sd[0].p99, sd[1].min / sd[0].min, rawPaired, shmRatio, sd[2].p99 / sd[0].p99,
              sd[2].min / sd[0].min, shmPaired);
  double queueUs = during.meanUs(during.queueNs, during.queueCount);
  double computeMs = during.meanUs(during.computeNs, during.computeCount) / 1000;
  double agentMs = during.meanUs(during.successNs, during.successCount) / 1000;
  std::printf("  the agent's own account (ModelStatistics, socket requests): mean in agent %.3f ms = queue %.1f us + "
              "compute %.3f ms + the rest\n\n",
              agentMs, queueUs, computeMs);
  summary.target("SqueezeNet via socket, raw contents: p50 / in-process p50", ratioText(rawRatio), "x", "<= 1.05",
                 rawRatio <= 1.05);
  summary.info("... p99 / in-process p99; min / min; paired per round",
               ratioText(sd[1].p99 / sd[0].p99) + "; " + ratioText(sd[1].min / sd[0].min) + "; " + ratioText(rawPaired),
               "x");
  summary.target("SqueezeNet via socket, shared memory: p50 / in-process p50", ratioText(shmRatio), "x", "<= 1.01",
                 shmRatio <= 1.01);
  summary.info("... p99 / in-process p99; min / min; paired per round",
               ratioText(sd[2].p99 / sd[0].p99) + "; " + ratioText(sd[2].min / sd[0].min) + "; " + ratioText(shmPaired),
               "x");
  summary.info("SqueezeNet in the agent, mean: queue wait / compute", fixed(queueUs, 1) + " us / " + fixed(computeMs, 3) + " ms",
               "");

  // 3: a small request's overhead, next to the floor of any unary call on the
  // socket: ServerLive, which the agent answers at once.
  auto liveStub = inference::GRPCInferenceService::NewStub(benchChannel(socket, true));
  auto live = [&] {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    inference::ServerLiveRequest req;
    inference::ServerLiveResponse resp;
    return liveStub->ServerLive(&ctx, req, &resp).ok();
  };
  AgentStats tinyBefore = agentStats(socket, "tiny");
  std::vector<Mode> tiny = {
      {"in-process", [&] { tinyLocal.run(); return true; }, {}, {}, 0},
      {"socket-raw", [&] { return sendOk(*tinyRaw); }, {}, {}, 0},
      {"socket-shm", [&] { return sendOk(*tinyShm); }, {}, {}, 0},
      {"server-live", live, {}, {}, 0},
  };
  interleave(tiny, o.tinyRounds, o.tinyPerRound, "tiny latency");
  AgentStats tinyDuring = agentStats(socket, "tiny") - tinyBefore;
  keep("tiny", tiny);
  std::printf("tiny, batch 1, one client, %d interleaved rounds of %d per mode (us):\n", o.tinyRounds, o.tinyPerRound);
  std::vector<Distribution> td;
  for (auto& m : tiny) {
    td.push_back(distribution(m.us));
    std::printf("  %-11s %s%s\n", m.name.c_str(), describe(td.back(), "us", 1).c_str(),
                m.failures ? ("  FAILED " + std::to_string(m.failures)).c_str() : "");
    if (m.name != "server-live")
      summary.info("tiny " + m.name + " latency p50 / p99", fixed(td.back().p50, 1) + " / " + fixed(td.back().p99, 1),
                   "us");
  }
  double overhead = td[1].p50 - td[0].p50, shmOverhead = td[2].p50 - td[0].p50;
  double tinyAgentUs = tinyDuring.meanUs(tinyDuring.successNs, tinyDuring.successCount);
  double tinyQueueUs = tinyDuring.meanUs(tinyDuring.queueNs, tinyDuring.queueCount);
  double tinyComputeUs = tinyDuring.meanUs(tinyDuring.computeNs, tinyDuring.computeCount);
  std::printf("  overhead (socket p50 - in-process p50): raw %.1f us, shm %.1f us; in the agent, mean %.1f us "
              "(queue %.1f + compute %.1f + the rest); a ServerLive round trip alone: p50 %.1f us\n\n",
              overhead, shmOverhead, tinyAgentUs, tinyQueueUs, tinyComputeUs, td[3].p50);
  summary.target("small request overhead (tiny, raw: socket p50 - in-process p50)", fixed(overhead, 1), "us", "< 60",
                 overhead < 60);
  summary.info("... the same through shared memory", fixed(shmOverhead, 1), "us");
  summary.info("gRPC floor: ServerLive round trip p50 / p99 (no model, no scheduler)",
               fixed(td[3].p50, 1) + " / " + fixed(td[3].p99, 1), "us");
  summary.info("tiny in the agent, mean: total / queue wait / compute",
               fixed(tinyAgentUs, 1) + " / " + fixed(tinyQueueUs, 1) + " / " + fixed(tinyComputeUs, 1), "us");
  {
    CsvFile csv(o.out + "/agent-latency.csv", {"model", "mode", "round", "latency_us"});
    for (const auto& [model, modes] : latencies)
      for (const auto& m : *modes)
        for (size_t i = 0; i < m.us.size(); ++i)
          csv << std::vector<std::string>{model, m.name, std::to_string(m.round[i]), fixed(m.us[i], 1)};
  }

  // 4: throughput of concurrent clients: each in-process thread its own Net.
  const int n = o.clients;
  std::vector<std::unique_ptr<InProcess>> nets;
  for (int i = 0; i < n; ++i) nets.push_back(std::make_unique<InProcess>(modelFile(o.models, "squeezenet"), squeezeMeta, squeezeIn));
  std::vector<std::unique_ptr<RequestLoop>> rawClients, shmClients;
  for (int i = 0; i < n; ++i) {
    rawClients.push_back(loop(squeezeMeta, false));
    shmClients.push_back(loop(squeezeMeta, true));
  }
  struct TMode {
    std::string name;
    std::function<bool(int)> once;
    std::vector<Throughput> rounds;
  };
  std::vector<TMode> tmodes = {
      {"in-process", [&](int i) { nets[static_cast<size_t>(i)]->run(); return true; }, {}},
      {"socket-raw", [&](int i) { return sendOk(*rawClients[static_cast<size_t>(i)]); }, {}},
      {"socket-shm", [&](int i) { return sendOk(*shmClients[static_cast<size_t>(i)]); }, {}},
  };
  progress("throughput: warm-up");
  for (auto& m : tmodes) concurrently(n, 1.0, m.once);
  AgentStats tpBefore = agentStats(socket, "squeezenet");
  for (int r = 0; r < o.throughputRounds; ++r) {
    for (size_t k = 0; k < tmodes.size(); ++k) {
      TMode& m = tmodes[(static_cast<size_t>(r) + k) % tmodes.size()];
      progress("throughput: round " + std::to_string(r + 1) + "/" + std::to_string(o.throughputRounds) + ", " + m.name);
      m.rounds.push_back(concurrently(n, o.seconds, m.once));
    }
  }
  progress("");
  AgentStats tp = agentStats(socket, "squeezenet") - tpBefore;
  CsvFile tcsv(o.out + "/agent-throughput.csv", {"mode", "round", "clients", "images", "failures", "seconds", "images_per_s"});
  std::printf("SqueezeNet throughput, batch 1, %d concurrent clients / threads, %d interleaved rounds of %.0f s:\n", n,
              o.throughputRounds, o.seconds);
  std::vector<double> medians;
  for (const auto& m : tmodes) {
    std::vector<double> per;
    uint64_t failures = 0;
    for (size_t r = 0; r < m.rounds.size(); ++r) {
      const auto& t = m.rounds[r];
      per.push_back(t.perSecond());
      failures += t.failures;
      tcsv << std::vector<std::string>{m.name, std::to_string(r), std::to_string(n), std::to_string(t.done),
                                       std::to_string(t.failures), fixed(t.seconds, 3), fixed(t.perSecond(), 2)};
    }
    medians.push_back(distribution(per).p50);
    std::string each;
    for (double v : per) each += (each.empty() ? "" : ", ") + fixed(v, 1);
    std::printf("  %-11s median %.1f images/s (rounds: %s)%s\n", m.name.c_str(), medians.back(), each.c_str(),
                failures ? ("  FAILED " + std::to_string(failures)).c_str() : "");
    summary.info("SqueezeNet throughput, " + std::to_string(n) + " clients, " + m.name, fixed(medians.back(), 1),
                 "images/s");
  }
  double meanBatch = tp.executions ? static_cast<double>(tp.inferences) / static_cast<double>(tp.executions) : 0;
  std::printf("  the agent formed batches of %.2f images on average (dynamic batching; ModelStatistics)\n", meanBatch);
  double tpRatio = medians[1] / medians[0];
  summary.target("throughput, " + std::to_string(n) + " clients via socket (raw) / " + std::to_string(n) +
                     " in-process threads",
                 ratioText(tpRatio), "x", ">= 0.95", tpRatio >= 0.95);
  summary.info("... through shared memory / in-process", ratioText(medians[2] / medians[0]), "x");
  summary.info("mean batch the agent formed from the " + std::to_string(n) + " clients", fixed(meanBatch, 2), "images");

  for (const auto& m : squeeze)
    if (m.failures) summary.finding("squeezenet " + m.name + ": " + std::to_string(m.failures) + " requests failed");
  for (const auto& m : tiny)
    if (m.failures) summary.finding("tiny " + m.name + ": " + std::to_string(m.failures) + " requests failed");

  summary.info("machine: 1-minute load average before / after", loadBefore + " / " + loadAverage(), "");
  summary.writeCsv(o.out + "/agent-summary.csv");
  summary.mergeInto(o.out + "/summary.csv", kPrefix);
  summary.print();
  std::printf("\nCSV: %s/agent-latency.csv, %s/agent-throughput.csv; summary rows in %s/summary.csv\n", o.out.c_str(),
              o.out.c_str(), o.out.c_str());
  return 0;
}

}  // namespace
}  // namespace kubeaccel::bench

int main(int argc, char** argv) {
  using namespace kubeaccel;
  using namespace kubeaccel::bench;
  Options o;
  auto parse = [&] {
    Args args(argc, argv, 1,
              {"squeezenet", "tiny-rounds", "tiny", "clients", "throughput-rounds", "seconds", "models", "agent", "out"},
              {"help"});
    if (args.has("help")) {
      std::cout << kUsage;
      return false;
    }
    if (!args.positional().empty()) throw UsageError("unexpected argument '" + args.positional()[0] + "'");
    o.squeezeRequests = positiveInt(args, "squeezenet", o.squeezeRequests);
    o.tinyRounds = positiveInt(args, "tiny-rounds", o.tinyRounds);
    o.tinyPerRound = positiveInt(args, "tiny", o.tinyPerRound);
    o.clients = positiveInt(args, "clients", o.clients);
    o.throughputRounds = positiveInt(args, "throughput-rounds", o.throughputRounds);
    o.seconds = positiveNumber(args, "seconds", o.seconds);
    o.models = args.get("models", o.models);
    o.agent = args.get("agent", o.agent);
    o.out = args.get("out", o.out);
    return true;
  };
  return benchMain("agent_bench", parse, [&] { return run(o); });
}
