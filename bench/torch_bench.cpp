// The torch backend, measured side by side in one run on this machine:
//   1. ResNet-50, batch 1, through a slot socket: torch backend (TorchScript)
//      vs opencv-cpu (the same weights exported to ONNX). Target: torch <= 0.5x.
//   2. SqueezeNet 1.1, batch 1: through the socket (torch backend) vs libtorch
//      in this process on the same file. Target: <= 1.05x.
// Two agents run at once, one per backend, on the machine's first PCI device
// (real sysfs). Both engines use every CPU: OpenCV by default, libtorch
// through "threads" in a copy of the models' config.json (and in process),
// with BLAS single-threaded under it (see singleThreadedBlas). Modes alternate request by request, so load changes on the
// shared machine hit both sides alike. Writes torch.csv (p50/p99 per side),
// torch-latency.csv (every sample), and its rows into summary.csv
// (replacing earlier "torch: " rows), with the load average before and after.
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <torch/script.h>

#include <dlfcn.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "agent_process.hpp"
#include "bench_flags.hpp"
#include "inference_client.hpp"
#include "report.hpp"
#include "stats.hpp"
#include "util/args.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
using namespace kubeaccel::bench;

// A real kubeaccel-agent serving one slot of one class with `backend` over `models`.
std::unique_ptr<AgentProcess> startAgent(const std::string& backend, const std::string& models, const std::string& log,
                                         std::vector<std::string> env = {}) {
  AgentSetup setup;
  setup.binary = KUBEACCEL_AGENT_BIN;
  setup.backendDir = KUBEACCEL_BACKENDS_DIR;
  setup.models = models;
  setup.log = log;
  setup.className = "bench";
  setup.backend = backend;
  setup.slots = 1;
  setup.startTimeout = 120s;  // ResNet-50 loads, dry-runs and warms up
  setup.env = std::move(env);
  return std::make_unique<AgentProcess>(setup);
}

// The torch side's repository: the build's squeezenet and resnet50 with
// "threads" set to every CPU, as OpenCV DNN uses them by default (libtorch's
// own default is the physical cores: 1 on a VM whose 2 CPUs are one core's
// hyperthreads). Removed by the caller.
std::string torchRepository(unsigned threads) {
  namespace fs = std::filesystem;
  char tmpl[] = "/tmp/kubeaccel-torch-bench-models-XXXXXX";
  if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
  for (const char* name : {"squeezenet", "resnet50"}) {
    fs::path from = fs::path(KUBEACCEL_TORCH_MODELS_DIR) / name, to = fs::path(tmpl) / name;
    fs::copy(from, to, fs::copy_options::recursive);
    std::ifstream in(from / "config.json");
    nlohmann::json config = nlohmann::json::parse(in);
    config["threads"] = threads;
    std::ofstream(to / "config.json", std::ios::trunc) << config.dump(2) << "\n";
  }
  return tmpl;
}

// OpenBLAS's own threads (when libblas.so.3 is OpenBLAS) fight libtorch's
// OpenMP threads for the same cores: SqueezeNet at 2 libtorch threads took
// 183 ms with them, 12 ms without. libtorch parallelizes above BLAS, so
// BLAS runs single-threaded: the agent gets OPENBLAS_NUM_THREADS=1, this
// process calls openblas_set_num_threads(1) when OpenBLAS is loaded.
void singleThreadedBlas() {
  using SetThreads = void (*)(int);
  if (auto set = reinterpret_cast<SetThreads>(::dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) set(1);
}

// Times one request. A pause first, untimed: the side that ran last leaves
// its thread pool spinning for a while (OpenMP, TBB), which on a 2-core
// machine would slow the other side's request down.
template <class F>
double timeUs(F&& f) {
  std::this_thread::sleep_for(20ms);
  auto t0 = Clock::now();
  f();
  return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
}

// One request; its first output's bytes.
std::string infer(kubeaccel::InferenceClient& c, const std::string& model,
                  const std::vector<kubeaccel::ClientTensor>& in) {
  std::vector<kubeaccel::ClientTensor> out;
  grpc::Status s = c.infer(model, in, &out);
  if (!s.ok()) throw std::runtime_error(model + ": " + s.error_message());
  return out.empty() ? "" : out[0].bytes;
}

// Max |a - b| of two FP32 buffers; infinity when their sizes differ.
double maxAbsDiff(const std::string& a, const std::string& b) {
  if (a.size() != b.size() || a.empty()) return INFINITY;
  double m = 0;
  for (size_t i = 0; i + sizeof(float) <= a.size(); i += sizeof(float)) {
    float x, y;
    std::memcpy(&x, a.data() + i, sizeof x);
    std::memcpy(&y, b.data() + i, sizeof y);
    m = std::max(m, static_cast<double>(std::fabs(x - y)));
  }
  return m;
}

struct Side {
  std::string figure, name;
  std::vector<double> us;
  Distribution ms() const {
    std::vector<double> v;
    for (double u : us) v.push_back(u / 1000);
    return distribution(v);
  }
};

constexpr const char* kUsage = R"(Usage: torch_bench [--requests N] [--out DIR]

ResNet-50 batch 1 through a slot socket, torch backend vs opencv-cpu, and
SqueezeNet batch 1 through the socket (torch backend) vs libtorch in this
process, side by side: two real agents, requests alternating between sides.

  --requests N  ResNet-50 requests per side; SqueezeNet gets 5x as many (default 40)
  --out DIR     CSV and logs (default the source tree's bench/results)
)";

int run(int n, const std::string& out) {
  std::filesystem::create_directories(out);
  const std::string loadBefore = loadAverage();
  const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  const std::string torchModels = torchRepository(threads);
  std::shared_ptr<void> cleanup(nullptr, [&](void*) { std::filesystem::remove_all(torchModels); });
  auto torchAgent =
      startAgent("torch", torchModels, out + "/torch_bench-agent-torch.log", {"OPENBLAS_NUM_THREADS=1"});
  auto cvAgent = startAgent("opencv-cpu", KUBEACCEL_ONNX_BENCH_MODELS_DIR, out + "/torch_bench-agent-opencv.log");
  kubeaccel::InferenceClient tc("unix://" + torchAgent->socket(0), 60s), cc("unix://" + cvAgent->socket(0), 60s);
  inference::ModelMetadataResponse meta;
  if (!tc.metadata("resnet50", &meta).ok()) throw std::runtime_error("torch agent: no resnet50");
  auto image = kubeaccel::InferenceClient::randomInputs(meta, 1);
  if (!tc.metadata("squeezenet", &meta).ok()) throw std::runtime_error("torch agent: no squeezenet");
  auto squeezeIn = kubeaccel::InferenceClient::randomInputs(meta, 1);

  // In-process libtorch on the same file, as the backend runs it, with as many threads.
  singleThreadedBlas();
  at::set_num_threads(static_cast<int>(threads));
  torch::jit::Module squeeze = torch::jit::load(torchModels + "/squeezenet/1/model.pt");
  squeeze.eval();
  auto inProcess = [&] {
    c10::InferenceMode guard;
    at::Tensor t = torch::from_blob(squeezeIn[0].bytes.data(), squeezeIn[0].shape, torch::kFloat).clone();
    auto result = squeeze.forward({t}).toTensor().contiguous();
    volatile float sink = result.data_ptr<float>()[0];
    (void)sink;
  };
  // The two engines run the same weights: their answers agree up to float rounding.
  const double r50diff = maxAbsDiff(infer(tc, "resnet50", image), infer(cc, "resnet50", image));
  for (int i = 0; i < 3; ++i) {  // warm-up on every side
    infer(tc, "resnet50", image);
    infer(cc, "resnet50", image);
    infer(tc, "squeezenet", squeezeIn);
    inProcess();
  }
  Side r50torch{"resnet50_b1_socket", "torch", {}}, r50cv{"resnet50_b1_socket", "opencv-cpu", {}};
  Side sqSocket{"squeezenet_b1", "torch_socket", {}}, sqInProcess{"squeezenet_b1", "libtorch_in_process", {}};
  for (int i = 0; i < n; ++i) {
    // Alternating order too: neither side always follows the other.
    if (i % 2 == 0) {
      r50torch.us.push_back(timeUs([&] { infer(tc, "resnet50", image); }));
      r50cv.us.push_back(timeUs([&] { infer(cc, "resnet50", image); }));
    } else {
      r50cv.us.push_back(timeUs([&] { infer(cc, "resnet50", image); }));
      r50torch.us.push_back(timeUs([&] { infer(tc, "resnet50", image); }));
    }
  }
  for (int i = 0; i < n * 5; ++i) {
    if (i % 2 == 0) {
      sqSocket.us.push_back(timeUs([&] { infer(tc, "squeezenet", squeezeIn); }));
      sqInProcess.us.push_back(timeUs(inProcess));
    } else {
      sqInProcess.us.push_back(timeUs(inProcess));
      sqSocket.us.push_back(timeUs([&] { infer(tc, "squeezenet", squeezeIn); }));
    }
  }
  const std::string loadAfter = loadAverage();
  Distribution a = r50torch.ms(), b = r50cv.ms(), c = sqSocket.ms(), d = sqInProcess.ms();
  {
    CsvFile csv(out + "/torch.csv", {"figure", "side", "p50_ms", "p99_ms", "ratio_p50", "target"});
    csv << std::vector<std::string>{r50torch.figure, r50torch.name, fixed(a.p50, 3), fixed(a.p99, 3),
                                    fixed(a.p50 / b.p50, 3), "<=0.5"};
    csv << std::vector<std::string>{r50cv.figure, r50cv.name, fixed(b.p50, 3), fixed(b.p99, 3), "1", ""};
    csv << std::vector<std::string>{sqSocket.figure, sqSocket.name, fixed(c.p50, 3), fixed(c.p99, 3),
                                    fixed(c.p50 / d.p50, 3), "<=1.05"};
    csv << std::vector<std::string>{sqInProcess.figure, sqInProcess.name, fixed(d.p50, 3), fixed(d.p99, 3), "1", ""};
    CsvFile samples(out + "/torch-latency.csv", {"figure", "side", "latency_ms"});
    for (const Side* side : {&r50torch, &r50cv, &sqSocket, &sqInProcess})
      for (double u : side->us) samples << std::vector<std::string>{side->figure, side->name, fixed(u / 1000, 3)};
  }
  Report summary("torch_bench");
  summary.info("ResNet-50 b1 via socket, torch p50 / p99", fixed(a.p50, 1) + " / " + fixed(a.p99, 1), "ms");
  summary.info("ResNet-50 b1 via socket, opencv-cpu p50 / p99", fixed(b.p50, 1) + " / " + fixed(b.p99, 1), "ms");
  summary.target("ResNet-50 b1 via socket: torch p50 / opencv-cpu p50", fixed(a.p50 / b.p50, 3), "x", "<= 0.5",
                 a.p50 / b.p50 <= 0.5);
  summary.info("SqueezeNet b1, torch via socket p50 / p99", fixed(c.p50, 2) + " / " + fixed(c.p99, 2), "ms");
  summary.info("SqueezeNet b1, libtorch in process p50 / p99", fixed(d.p50, 2) + " / " + fixed(d.p99, 2), "ms");
  summary.target("SqueezeNet b1: socket p50 / in-process p50", fixed(c.p50 / d.p50, 3), "x", "<= 1.05",
                 c.p50 / d.p50 <= 1.05);
  summary.info("ResNet-50 outputs, torch vs opencv-cpu, max |diff|", fixed(r50diff, 6), "");
  summary.info("requests per side: ResNet-50 / SqueezeNet", std::to_string(n) + " / " + std::to_string(5 * n), "");
  summary.info("libtorch threads (config.json \"threads\", and in process); OpenBLAS threads",
               std::to_string(at::get_num_threads()) + "; 1", "");
  summary.info("machine: 1-minute load average before / after", loadBefore + " / " + loadAfter, "");
  summary.writeCsv(out + "/torch-summary.csv");
  summary.mergeInto(out + "/summary.csv", "torch: ");
  summary.print();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int n = 40;
  std::string out = KUBEACCEL_BENCH_RESULTS;
  auto parse = [&] {
    kubeaccel::Args args(argc, argv, 1, {"requests", "out"}, {"help"});
    if (args.has("help")) {
      std::cout << kUsage;
      return false;
    }
    if (!args.positional().empty()) throw kubeaccel::UsageError("unexpected argument '" + args.positional()[0] + "'");
    n = positiveInt(args, "requests", n);
    out = args.get("out", out);
    return true;
  };
  return benchMain("torch_bench", parse, [&] { return run(n, out); });
}
