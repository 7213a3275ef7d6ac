// The agent's engine path without the socket: a closed loop that hands one
// request at a time to N worker threads, each with its own runner, through
// the backend library's C ABI exactly as the agent's DeviceScheduler does
// (whichever idle worker wakes first takes it). Between torch_inprocess (the
// same model in a plain libtorch loop) and a slot socket (bench/README.md
// "GPU"), it says which part of a request's latency is the backend's and
// which the agent's front end.
//
// Usage: backend_loop --backend-dir DIR --model DIR --pci BUS_ID [--batch 1,8] [--workers N]
//                     [--pinned] [--duration S] [--warmup S] [--label TEXT]
//   --model: a model folder (<models>/<name>, with config.json and 1/)
//   --pinned: the input sits in memory pinned through the backend (as a pod's
//             pinned shared-memory region does); otherwise in pageable memory
//             (as a request's raw_input_contents does).
// Prints one CSV row per batch size (no header), as torch_inprocess does:
//   label,precision,batch,iterations,images_per_s,latency_p50_ms,latency_p99_ms

#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "backend/abi_backend.hpp"
#include "backend/backend_library.hpp"
#include "repository/model_config.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using namespace kubeaccel::agent;

struct Options {
  std::string backendDir, model, pci, label = "backend-loop";
  std::vector<int64_t> batches{1};
  int workers = 1;
  bool pinned = false;
  double duration = 3, warmup = 1;
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "backend_loop: %s\nusage: backend_loop --backend-dir DIR --model DIR --pci BUS_ID [--batch LIST] "
               "[--workers N] [--pinned] [--duration S] [--warmup S] [--label TEXT]\n",
               why.c_str());
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "--pinned") {
      o.pinned = true;
      continue;
    }
    if (i + 1 >= argc) usage("missing value for " + flag);
    std::string v = argv[++i];
    if (flag == "--backend-dir") o.backendDir = v;
    else if (flag == "--model") o.model = v;
    else if (flag == "--pci") o.pci = v;
    else if (flag == "--label") o.label = v;
    else if (flag == "--workers") o.workers = std::stoi(v);
    else if (flag == "--duration") o.duration = std::stod(v);
    else if (flag == "--warmup") o.warmup = std::stod(v);
    else if (flag == "--batch") {
      o.batches.clear();
      std::stringstream list(v);
      for (std::string b; std::getline(list, b, ',');) o.batches.push_back(std::stoll(b));
    } else usage("unknown flag " + flag);
  }
  if (o.backendDir.empty() || o.model.empty() || o.workers < 1 || o.duration <= 0) usage("bad or missing flags");
  return o;
}

std::string readFile(const std::string& path) {
  std::ifstream f(path);
  if (!f) usage("cannot read " + path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// One request at a time, handed to whichever idle worker wakes first.
class Workers {
 public:
  Workers(const LoadedModel& model, int n) {
    for (int i = 0; i < n; ++i) threads_.emplace_back([this, &model] { work(model); });
  }
  ~Workers() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  // Runs `inputs` on a worker; returns when its outputs are back.
  void run(const std::vector<InputTensor>& inputs) {
    std::unique_lock lock(mu_);
    job_ = &inputs;
    done_ = false;
    cv_.notify_all();
    doneCv_.wait(lock, [this] { return done_; });
    if (!error_.empty()) usage("the run failed: " + error_);
  }

 private:
  void work(const LoadedModel& model) {
    std::unique_ptr<ModelRunner> runner = model.newRunner();
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [this] { return stopping_ || job_; });
      if (stopping_) return;
      const auto* inputs = job_;
      job_ = nullptr;
      lock.unlock();
      std::string error;
      try {
        runner->run(*inputs, {});
      } catch (const std::exception& e) {
        error = e.what();
      }
      lock.lock();
      error_ = error;
      done_ = true;
      doneCv_.notify_one();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_, doneCv_;
  const std::vector<InputTensor>* job_ = nullptr;
  bool done_ = false, stopping_ = false;
  std::string error_;
  std::vector<std::thread> threads_;
};

void measure(const LoadedModel& model, Backend& backend, const ModelConfig& config, int64_t batch,
             const Options& o) {
  const TensorSpec& spec = model.inputs().at(0);
  std::vector<int64_t> shape = spec.shape;
  shape[0] = batch;
  for (int64_t d : shape)
    if (d < 1) usage("input '" + spec.name + "' has a free dimension besides the batch; backend_loop takes fixed ones");
  size_t bytes = *byteCount(spec.datatype, shape);
  // Page-aligned, as a shared-memory region is.
  void* mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) usage("cannot map " + std::to_string(bytes) + " bytes");
  auto* floats = static_cast<float*>(mem);
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(0, 1);
  for (size_t i = 0; i < bytes / sizeof(float); ++i) floats[i] = u(rng);
  HostMemoryPinner* pinner = backend.hostMemoryPinner();
  if (o.pinned) {
    bool unavailable = false;
    std::string why = pinner ? pinner->pin(mem, bytes, &unavailable) : "the backend pins nothing";
    if (!why.empty()) usage("cannot pin the input: " + why);
  }
  std::vector<InputTensor> inputs{{spec.name, spec.datatype, shape,
                                   std::span<const std::byte>(static_cast<const std::byte*>(mem), bytes)}};
  std::vector<double> ms;
  {
    Workers workers(model, o.workers);
    auto warmEnd = Clock::now() + std::chrono::duration<double>(o.warmup);
    do workers.run(inputs);
    while (Clock::now() < warmEnd);
    auto start = Clock::now();
    auto end = start + std::chrono::duration<double>(o.duration);
    for (auto t = start; t < end;) {
      workers.run(inputs);
      auto now = Clock::now();
      ms.push_back(std::chrono::duration<double, std::milli>(now - t).count());
      t = now;
    }
    double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    std::sort(ms.begin(), ms.end());
    auto pct = [&](double p) { return ms[std::min(ms.size() - 1, static_cast<size_t>(p * ms.size()))]; };
    std::printf("%s,%s,%lld,%zu,%.2f,%.3f,%.3f\n", o.label.c_str(), config.precision.c_str(),
                static_cast<long long>(batch), ms.size(), static_cast<double>(ms.size()) * batch / seconds,
                pct(0.5), pct(0.99));
    std::fflush(stdout);
  }
  if (o.pinned) pinner->unpin(mem);
  munmap(mem, bytes);
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  std::string reason;
  const kab_backend* table = openBackendLibrary(o.backendDir, "torch", &reason);
  if (!table) usage(reason);
  AbiBackend backend(table, o.pci);
  std::string configJson = readFile(o.model + "/config.json");
  ModelConfig config = parseModelConfig(configJson, o.model + "/config.json");
  std::unique_ptr<LoadedModel> model = backend.load(o.model + "/1", configJson, config);
  for (int64_t batch : o.batches) measure(*model, backend, config, batch, o);
  return 0;
}
