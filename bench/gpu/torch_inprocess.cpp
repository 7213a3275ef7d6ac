// In-process libtorch baseline for the GPU benchmarks (bench/gpu/run.sh): the
// same engine, model file, precision and batch as the agent, with no socket.
// One closed loop does what the agent does for one request whose tensors sit
// in a pod's pinned shared-memory region: FP32 input from pinned host memory
// to the GPU, converted there to the model's precision, forward, output
// converted back to FP32 and copied into pinned host memory, one wait.
// Run N of these processes at once for what time-slicing gives N pods.
//
// Usage: torch_inprocess --model model.pt --device cuda|cpu --precision fp32|fp16|bf16
//                        --batch 1,8,256 --duration S [--warmup S] [--label TEXT]
// Prints one CSV row per batch size (no header):
//   label,precision,batch,iterations,images_per_s,latency_p50_ms,latency_p99_ms

#include <torch/cuda.h>
#include <torch/script.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string model, device = "cuda", precision = "fp16", label = "inprocess";
  std::vector<int64_t> batches{1};
  double duration = 5, warmup = 1;
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr, "torch_inprocess: %s\nusage: torch_inprocess --model FILE --device cuda|cpu "
                       "--precision fp32|fp16|bf16 --batch LIST --duration S [--warmup S] [--label TEXT]\n", why);
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (i + 1 >= argc) usage(("missing value for " + flag).c_str());
    std::string v = argv[++i];
    if (flag == "--model") o.model = v;
    else if (flag == "--device") o.device = v;
    else if (flag == "--precision") o.precision = v;
    else if (flag == "--label") o.label = v;
    else if (flag == "--batch") {
      o.batches.clear();
      std::stringstream list(v);
      for (std::string b; std::getline(list, b, ',');) o.batches.push_back(std::stoll(b));
    }
    else if (flag == "--duration") o.duration = std::stod(v);
    else if (flag == "--warmup") o.warmup = std::stod(v);
    else usage(("unknown flag " + flag).c_str());
  }
  bool batchesOk = !o.batches.empty() && *std::min_element(o.batches.begin(), o.batches.end()) >= 1;
  if (o.model.empty() || !batchesOk || o.duration <= 0) usage("--model, --batch >= 1 and --duration > 0 are needed");
  return o;
}

at::ScalarType precisionType(const std::string& p) {
  if (p == "fp16") return at::kHalf;
  if (p == "bf16") return at::kBFloat16;
  if (p == "fp32") return at::kFloat;
  usage(("unknown precision " + p).c_str());
}

// Measures one batch size and prints its row.
void measure(torch::jit::Module& m, c10::Device device, at::ScalarType precision, int64_t batch, const Options& o) {
  bool cuda = device.is_cuda();
  auto hostOptions = at::TensorOptions().dtype(at::kFloat).pinned_memory(cuda);
  at::Tensor input = at::rand({batch, 3, 224, 224}, at::TensorOptions().dtype(at::kFloat));
  at::Tensor pinnedInput = at::empty(input.sizes(), hostOptions).copy_(input);
  at::Tensor pinnedOutput;

  auto once = [&] {
    at::Tensor x = pinnedInput.to(device, at::kFloat, /*non_blocking=*/true).to(precision);
    at::Tensor y = m.forward({x}).toTensor().to(at::kFloat).contiguous();
    if (!pinnedOutput.defined() || pinnedOutput.sizes() != y.sizes()) pinnedOutput = at::empty(y.sizes(), hostOptions);
    pinnedOutput.copy_(y, /*non_blocking=*/true);
    if (cuda) torch::cuda::synchronize();
  };
  auto warmEnd = Clock::now() + std::chrono::duration<double>(o.warmup);
  do once(); while (Clock::now() < warmEnd);

  std::vector<double> ms;
  auto start = Clock::now();
  auto end = start + std::chrono::duration<double>(o.duration);
  for (auto t = start; t < end;) {
    once();
    auto now = Clock::now();
    ms.push_back(std::chrono::duration<double, std::milli>(now - t).count());
    t = now;
  }
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::sort(ms.begin(), ms.end());
  auto pct = [&](double p) { return ms[std::min(ms.size() - 1, static_cast<size_t>(p * static_cast<double>(ms.size())))]; };
  std::printf("%s,%s,%lld,%zu,%.2f,%.3f,%.3f\n", o.label.c_str(), o.precision.c_str(), static_cast<long long>(batch),
              ms.size(), static_cast<double>(ms.size()) * static_cast<double>(batch) / seconds, pct(0.5), pct(0.99));
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  c10::Device device = o.device == "cuda" ? c10::Device(c10::kCUDA, 0) : c10::Device(c10::kCPU);
  at::ScalarType precision = precisionType(o.precision);
  c10::InferenceMode mode;
  torch::jit::Module m = torch::jit::load(o.model, device);
  m.eval();
  m.to(precision);
  for (int64_t batch : o.batches) measure(m, device, precision, batch, o);
  return 0;
}
