// The torch backend: libtorch for TorchScript (model.pt) and, built against
// libtorch >= 2.6, AOTInductor packages (model.pt2). All torch code of the
// backend is in this one file, since torch headers compile slowly.
//
// TorchScript carries no typed signature, so config.json declares the inputs
// and outputs; load checks them with a dry run, which also warms the model up.

#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <torch/cuda.h>
#include <torch/script.h>
#include <torch/version.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <set>
#include <optional>

#include "backend_support.hpp"
#include "torch_device.hpp"

#define KUBEACCEL_TORCH_HAS_AOTI (TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 6))
#if KUBEACCEL_TORCH_HAS_AOTI
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>
#endif
#ifdef KUBEACCEL_TORCH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <ATen/cuda/CUDAGraph.h>
#include <cuda_runtime_api.h>
#endif

namespace kubeaccel::backend {
namespace {

constexpr int kWarmupRuns = 2;  // after the dry run

std::string libtorchVersion() {
  return std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
         std::to_string(TORCH_VERSION_PATCH);
}

// The first line of a c10::Error, without libtorch's C++ backtrace.
std::string message(const std::exception& e) {
  std::string m;
  if (auto* c = dynamic_cast<const c10::Error*>(&e))
    m = c->what_without_backtrace();
  else
    m = e.what();
  // TorchScript errors quote the failing code over several lines; keep them,
  // joined, so the answer says where, but on one line.
  for (auto& ch : m)
    if (ch == '\n') ch = ' ';
  while (!m.empty() && m.back() == ' ') m.pop_back();
  return m;
}

std::optional<at::ScalarType> scalarType(const std::string& datatype) {
  static const std::map<std::string, at::ScalarType> types = {
      {"BOOL", at::kBool},   {"UINT8", at::kByte},  {"INT8", at::kChar},     {"INT16", at::kShort},
      {"INT32", at::kInt},   {"INT64", at::kLong},  {"FP16", at::kHalf},     {"FP32", at::kFloat},
      {"FP64", at::kDouble}, {"BF16", at::kBFloat16}};
  auto it = types.find(datatype);
  if (it == types.end()) return std::nullopt;
  return it->second;
}

// What the model computes in: floating tensors are converted to it at the
// boundary, anything else keeps its type.
struct Precision {
  std::string name = "fp32";
  at::ScalarType type = at::kFloat;
};

Precision precisionOf(const std::string& name) {
  if (name == "fp16") return {name, at::kHalf};
  if (name == "bf16") return {name, at::kBFloat16};
  return {"fp32", at::kFloat};
}

// One way to run a model file: TorchScript or AOTInductor.
class Engine {
 public:
  virtual ~Engine() = default;
  // Thread-safe: runners of one model share the engine.
  virtual c10::IValue forward(std::vector<c10::IValue> inputs) = 0;
};

class ScriptEngine final : public Engine {
 public:
  explicit ScriptEngine(torch::jit::Module m) : module_(std::move(m)) {}
  // A TorchScript module in eval mode may run forward on several threads.
  c10::IValue forward(std::vector<c10::IValue> inputs) override { return module_.forward(std::move(inputs)); }

 private:
  torch::jit::Module module_;
};

#if KUBEACCEL_TORCH_HAS_AOTI
class AotiEngine final : public Engine {
 public:
  AotiEngine(const std::string& file, c10::Device device) : device_(device), loader_(file) {}
  c10::IValue forward(std::vector<c10::IValue> inputs) override {
    std::vector<at::Tensor> ts;
    for (auto& i : inputs) ts.push_back(i.toTensor());
    c10::DeviceGuard guard(device_);
    std::vector<at::Tensor> out = loader_.run(ts);
    return c10::IValue(c10::List<at::Tensor>(out));
  }

 private:
  c10::Device device_;
  torch::inductor::AOTIModelPackageLoader loader_;
};
#endif

struct Settings {
  std::vector<TensorSpec> inputs, outputs;
  Precision precision;
  bool cudaGraphs = false;
  int threads = 0;
  c10::Device device = c10::kCPU;
  std::string deviceText = "cpu";
};

// The model's answer as the declared outputs, in their order: a tensor (one
// output), a tuple or list of tensors (by order) or a dict of tensors (by name).
std::vector<at::Tensor> mapOutputs(const c10::IValue& v, const std::vector<TensorSpec>& declared) {
  std::vector<at::Tensor> out;
  auto countCheck = [&](size_t n, const char* what) {
    if (n != declared.size())
      throw Error(KAB_INVALID, std::string("the model returns ") + what + " of " + std::to_string(n) +
                                   " tensors; config.json declares " + std::to_string(declared.size()) + " outputs");
  };
  auto tensorAt = [&](const c10::IValue& x, size_t i) {
    if (!x.isTensor())
      throw Error(KAB_INVALID, "output '" + declared[i].name + "': the model returns a " + x.tagKind() +
                                   ", not a tensor");
    return x.toTensor();
  };
  if (v.isTensor()) {
    countCheck(1, "one tensor instead");
    out.push_back(v.toTensor());
  } else if (v.isTuple()) {
    const auto& e = v.toTupleRef().elements();
    countCheck(e.size(), "a tuple");
    for (size_t i = 0; i < e.size(); ++i) out.push_back(tensorAt(e[i], i));
  } else if (v.isList()) {
    auto l = v.toList();
    countCheck(l.size(), "a list");
    for (size_t i = 0; i < l.size(); ++i) out.push_back(tensorAt(l.get(i), i));
  } else if (v.isGenericDict()) {
    auto d = v.toGenericDict();
    countCheck(d.size(), "a dict");
    for (size_t i = 0; i < declared.size(); ++i) {
      auto it = d.find(c10::IValue(declared[i].name));
      if (it == d.end())
        throw Error(KAB_INVALID, "output '" + declared[i].name + "': the model's dict has no such key");
      out.push_back(tensorAt(it->value(), i));
    }
  } else {
    throw Error(KAB_INVALID, "the model returns a " + v.tagKind() +
                                 "; the torch backend takes a tensor, or a tuple, list or dict of tensors");
  }
  return out;
}

class TorchModel;

class TorchRunner final : public Runner {
 public:
  explicit TorchRunner(const TorchModel& m);
  void run(std::span<const kab_input> inputs, std::span<kab_output> outputs) override {
    runInto(inputs, outputs, {});
  }
  // On CUDA, an output that fits its destination is copied from the GPU
  // straight into it (a pod's pinned shared-memory range).
  void runInto(std::span<const kab_input> inputs, std::span<kab_output> outputs,
               std::span<const kab_destination> destinations) override;

 private:
  void runOnStream(std::span<const kab_input> inputs, std::span<kab_output> outputs,
                   std::span<const kab_destination> destinations);
  const TorchModel& model_;
#ifdef KUBEACCEL_TORCH_CUDA
  // Each worker queues its batches on its own stream, so that one worker's
  // copies overlap another's kernels.
  std::optional<c10::cuda::CUDAStream> stream_;

  // config.json cuda_graphs: a captured graph per input shape (and type),
  // replayed on static input and output tensors.
  struct Graph {
    at::cuda::CUDAGraph graph;
    std::vector<at::Tensor> in, out;
  };
  static constexpr int64_t kMaxGraphRows = 32;
  static constexpr size_t kMaxGraphs = 16;
  std::map<std::vector<int64_t>, std::unique_ptr<Graph>> graphs_;
  std::set<std::vector<int64_t>> ungraphable_;  // shapes whose capture failed, or past kMaxGraphs
  // One memory pool for all of this runner's graphs: they replay one at a
  // time on its stream and keep their static inputs and outputs alive, so
  // they may share the memory of their intermediate tensors; the pool is
  // then as large as the largest capture, not their sum.
  std::optional<decltype(at::cuda::graph_pool_handle())> pool_;
  // Leaves a capture that failed: ends the stream's capture mode and gives
  // the allocator's capture state back, as capture_end would have.
  void abandonCapture();
  // A failed run may have left copies from the agent's input memory queued;
  // the agent reuses or unmaps that memory as soon as the run returns.
  void waitAfterFailure() {
    if (stream_ && cudaStreamSynchronize(stream_->stream()) != cudaSuccess) cudaGetLastError();
  }
  // After an out-of-memory error: the graphs' pool holds GPU memory that
  // nothing else may use, so it goes back to the driver; the shapes are
  // captured again when they come back.
  void dropGraphs();
  std::optional<std::chrono::steady_clock::time_point> lastDrop_;
  // The outputs of `in` by graph replay, or nullopt when the shape gets none.
  std::optional<std::vector<at::Tensor>> replay(const std::vector<c10::IValue>& in);
#endif
};

#ifdef KUBEACCEL_TORCH_CUDA
// Gives the allocator's cached, unused blocks back to the driver. The
// allocator refuses (an assertion, thrown) while any thread of the process
// captures a CUDA graph, as another worker may: the blocks then stay cached.
void releaseCachedMemory() {
  try {
    c10::cuda::CUDACachingAllocator::emptyCache();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "torch backend: the GPU's cached memory stays cached for now: %s\n", message(e).c_str());
  }
}
#endif

class TorchModel final : public Model {
 public:
  TorchModel(std::unique_ptr<Engine> e, Settings s) : engine_(std::move(e)), s_(std::move(s)) {}
  const std::vector<TensorSpec>& inputs() const override { return s_.inputs; }
  const std::vector<TensorSpec>& outputs() const override { return s_.outputs; }
  kab_limits limits() const override { return {1, INT32_MAX, INT64_MAX / 16}; }
  std::string info() const override {
    return s_.deviceText + ", " + (s_.threads > 0 ? std::to_string(s_.threads) : std::string("default")) +
           " threads, " + s_.precision.name;
  }
  std::unique_ptr<Runner> newRunner() override { return std::make_unique<TorchRunner>(*this); }

  bool onCuda() const { return s_.device.is_cuda(); }
  bool cudaGraphs() const { return s_.cudaGraphs; }
  c10::Device device() const { return s_.device; }

  // Runs `inputs` (already on the device and in the model's precision) and
  // returns the outputs in host memory, contiguous, in their declared
  // datatypes. On CUDA, everything is queued on the current stream and the
  // host waits once, at the end: outputs are converted on the GPU and copied
  // into pinned host memory asynchronously.
  std::vector<at::Tensor> forward(std::vector<c10::IValue> inputs,
                                  std::span<const kab_destination> destinations = {}) const {
    return hostOutputs(deviceOutputs(std::move(inputs)), destinations);
  }

  // The model's outputs where it computed them (on the GPU, not waited for).
  std::vector<at::Tensor> deviceOutputs(std::vector<c10::IValue> inputs) const {
    c10::InferenceMode guard;
    c10::IValue result;
    try {
      result = engine_->forward(std::move(inputs));
    } catch (const c10::OutOfMemoryError& e) {
      throw outOfMemory("forward", e);
    } catch (const std::exception& e) {
      // The TorchScript interpreter rethrows an allocation failure inside
      // the model as a plain error that quotes it.
      if (isOutOfMemory(message(e))) throw outOfMemory("forward", e);
      throw Error(KAB_INTERNAL, "forward: " + message(e));
    }
    return mapOutputs(result, s_.outputs);
  }

  // `outs` (from deviceOutputs) in host memory, in their declared datatypes:
  // the one wait of a run. Output i goes into destinations[i] where it fits.
  std::vector<at::Tensor> hostOutputs(std::vector<at::Tensor> outs,
                                      std::span<const kab_destination> destinations = {}) const {
    c10::InferenceMode guard;
    try {
      // Every conversion and allocation first, so that a run failing on
      // one of them has written nothing into a pod's range.
      std::vector<at::Tensor> host(outs.size());
      for (size_t i = 0; i < outs.size(); ++i)
        host[i] = hostTensor(outs[i], *scalarType(s_.outputs[i].datatype),
                             i < destinations.size() ? destinations[i] : kab_destination{nullptr, 0});
      for (size_t i = 0; i < outs.size(); ++i) {
        if (outs[i].is_cuda()) host[i].copy_(outs[i], /*non_blocking=*/true);
        outs[i] = host[i];
      }
      synchronize();
    } catch (const c10::OutOfMemoryError& e) {
      throw outOfMemory("copying the outputs", e);
    }
    return outs;
  }

  // An input as the model takes it: on its device; floating inputs in its
  // precision. On CUDA the bytes go to the GPU as they are (asynchronously
  // when the host memory is pinned) and are converted there, since a blocking
  // copy would convert them on the CPU first. Throws Error.
  at::Tensor toModel(at::Tensor t) const {
    try {
      bool floating = at::isFloatingType(t.scalar_type());
      if (!onCuda()) return floating ? t.to(s_.device, s_.precision.type) : t.to(s_.device);
      at::Tensor d = t.to(s_.device, t.scalar_type(), /*non_blocking=*/true);
      return floating ? d.to(s_.precision.type) : d;
    } catch (const c10::OutOfMemoryError& e) {
      throw outOfMemory("copying an input to the GPU", e);
    }
  }

  // Loads' dry run: declared shapes (-1 as 1), zeros; checks every output.
  void dryRun() const {
    std::vector<c10::IValue> in;
    for (const auto& spec : s_.inputs) {
      std::vector<int64_t> shape;
      for (int64_t d : spec.shape) shape.push_back(d < 0 ? 1 : d);
      in.push_back(toModel(at::zeros(shape, at::TensorOptions().dtype(*scalarType(spec.datatype)))));
    }
    std::vector<at::Tensor> outs;
    try {
      outs = forward(in);
    } catch (const Error& e) {
      throw Error(KAB_INVALID, std::string("dry run with the declared inputs failed: ") + e.what());
    }
    for (size_t i = 0; i < outs.size(); ++i) {
      const TensorSpec& want = s_.outputs[i];
      auto sizes = outs[i].sizes();
      std::vector<int64_t> got(sizes.begin(), sizes.end());
      bool match = got.size() == want.shape.size();
      for (size_t d = 0; match && d < got.size(); ++d)
        if (want.shape[d] >= 0 && want.shape[d] != got[d]) match = false;
      if (!match)
        throw Error(KAB_INVALID, "output '" + want.name + "': config.json declares " + agent::shapeString(want.shape) +
                                     ", the model gives " + agent::shapeString(got) + " for the declared inputs");
    }
    for (int i = 0; i < kWarmupRuns; ++i) forward(in);
  }

 private:
  // Where `t` goes in host memory, as `type`: on the CPU, `t` itself,
  // converted and contiguous. On CUDA, `t` is converted on the GPU (and
  // replaced by that) and the answer is the host tensor to copy it into:
  // `dest` when it fits there, else pinned memory of the backend's.
  static at::Tensor hostTensor(at::Tensor& t, at::ScalarType type, kab_destination dest) {
    if (!t.is_cuda()) return t.to(at::kCPU, type).contiguous();
    t = t.to(type).contiguous();
    return dest.data && t.nbytes() <= dest.bytes
               ? at::from_blob(dest.data, t.sizes(), at::TensorOptions().dtype(type))
               : at::empty(t.sizes(), at::TensorOptions().dtype(type).pinned_memory(true));
  }

  // Waits for the current stream (the one wait of a run on CUDA).
  void synchronize() const {
#ifdef KUBEACCEL_TORCH_CUDA
    if (onCuda()) c10::cuda::getCurrentCUDAStream(s_.device.index()).synchronize();
#endif
  }

  static bool isOutOfMemory(const std::string& m) { return m.find("CUDA out of memory") != std::string::npos; }

  // A GPU out-of-memory error as KAB_RESOURCE_EXHAUSTED, with the part of
  // libtorch's message that says how much was asked for and how much was
  // free. The cached blocks go back to the driver, so the next, smaller
  // batch finds the memory.
  Error outOfMemory(const char* during, const std::exception& e) const {
#ifdef KUBEACCEL_TORCH_CUDA
    // Not while this thread's stream is being captured into a CUDA graph:
    // the allocator refuses then, and the capture's failure path cleans up.
    cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
    if (onCuda() && cudaStreamIsCapturing(c10::cuda::getCurrentCUDAStream(s_.device.index()).stream(), &capture) !=
                        cudaSuccess)
      cudaGetLastError();
    if (capture == cudaStreamCaptureStatusNone) releaseCachedMemory();
#endif
    std::string m = message(e);
    size_t from = m.find("CUDA out of memory");
    if (from != std::string::npos) {
      size_t to = m.find(" Including non-PyTorch memory", from);
      m = m.substr(from, to == std::string::npos ? std::string::npos : to - from);
    }
    return Error(KAB_RESOURCE_EXHAUSTED, std::string(during) + " on " + s_.deviceText + ": " + m);
  }

  std::unique_ptr<Engine> engine_;
  Settings s_;
};

TorchRunner::TorchRunner(const TorchModel& m) : model_(m) {
#ifdef KUBEACCEL_TORCH_CUDA
  if (m.onCuda()) stream_ = c10::cuda::getStreamFromPool(/*isHighPriority=*/false, m.device().index());
#endif
}

void TorchRunner::runInto(std::span<const kab_input> inputs, std::span<kab_output> outputs,
                          std::span<const kab_destination> destinations) {
#ifdef KUBEACCEL_TORCH_CUDA
  std::optional<c10::cuda::CUDAStreamGuard> onStream;
  if (stream_) onStream.emplace(*stream_);
  try {
    runOnStream(inputs, outputs, destinations);
  } catch (const Error& e) {
    waitAfterFailure();
    if (e.status == KAB_RESOURCE_EXHAUSTED) dropGraphs();
    throw;
  } catch (...) {
    waitAfterFailure();
    throw;
  }
#else
  runOnStream(inputs, outputs, destinations);
#endif
}

void TorchRunner::runOnStream(std::span<const kab_input> inputs, std::span<kab_output> outputs,
                              std::span<const kab_destination> destinations) {
  const auto& specs = model_.inputs();
  if (inputs.size() != specs.size() || outputs.size() != model_.outputs().size())
    throw Error(KAB_INVALID, "expected " + std::to_string(specs.size()) + " inputs and " +
                                 std::to_string(model_.outputs().size()) + " outputs");
  std::vector<c10::IValue> in;
  for (size_t i = 0; i < inputs.size(); ++i) {
    auto type = scalarType(inputs[i].datatype);
    if (!type || specs[i].datatype != inputs[i].datatype)
      throw Error(KAB_INVALID, "input '" + specs[i].name + "': datatype " + inputs[i].datatype + ", expected " +
                                   specs[i].datatype);
    std::vector<int64_t> shape(inputs[i].shape, inputs[i].shape + inputs[i].rank);
    auto bytes = agent::byteCount(inputs[i].datatype, shape);
    if (!bytes || *bytes != inputs[i].bytes)
      throw Error(KAB_INVALID, "input '" + specs[i].name + "': " + std::to_string(inputs[i].bytes) +
                                   " bytes do not make " + inputs[i].datatype + " " + agent::shapeString(shape));
    // A view of the agent's bytes, copied (clone, or the device/precision
    // conversion) so that a model that writes to its inputs cannot change them.
    at::Tensor view = at::from_blob(const_cast<void*>(inputs[i].data), shape, at::TensorOptions().dtype(*type));
    at::Tensor t = model_.toModel(view);
    in.push_back(t.data_ptr() == view.data_ptr() ? t.clone() : t);
  }
  std::vector<at::Tensor> outs;
#ifdef KUBEACCEL_TORCH_CUDA
  if (model_.cudaGraphs())
    if (auto replayed = replay(in)) outs = model_.hostOutputs(std::move(*replayed), destinations);
#endif
  if (outs.empty()) outs = model_.forward(std::move(in), destinations);
  for (size_t i = 0; i < outs.size(); ++i) {
    auto sizes = outs[i].sizes();
    std::vector<int64_t> shape(sizes.begin(), sizes.end());
    // The tensor itself owns the bytes until the agent has read them.
    const void* data = outs[i].data_ptr();
    size_t bytes = outs[i].nbytes();
    setOutput(outputs[i], model_.outputs()[i].datatype, shape, outs[i], data, bytes);
  }
}

#ifdef KUBEACCEL_TORCH_CUDA
std::optional<std::vector<at::Tensor>> TorchRunner::replay(const std::vector<c10::IValue>& in) {
  std::vector<int64_t> key;
  for (const auto& v : in) {
    const at::Tensor& t = v.toTensor();
    if (t.dim() == 0 || t.size(0) > kMaxGraphRows) return std::nullopt;
    key.push_back(static_cast<int64_t>(t.scalar_type()));
    key.push_back(t.dim());
    for (int64_t d : t.sizes()) key.push_back(d);
  }
  auto it = graphs_.find(key);
  if (it == graphs_.end()) {
    if (ungraphable_.count(key)) return std::nullopt;
    if (graphs_.size() >= kMaxGraphs) {
      ungraphable_.insert(key);
      return std::nullopt;
    }
    auto g = std::make_unique<Graph>();
    std::vector<c10::IValue> staticIn;
    for (const auto& v : in) {
      g->in.push_back(v.toTensor().clone());
      staticIn.emplace_back(g->in.back());
    }
    bool capturing = false;
    try {
      // Warm-up on this stream first: the TorchScript executor settles its
      // plan and cuDNN its algorithms, neither of which may happen in a capture.
      for (int i = 0; i < 3; ++i) model_.deviceOutputs(staticIn);
      stream_->synchronize();
      if (!pool_) pool_ = at::cuda::graph_pool_handle();
      g->graph.capture_begin(*pool_, cudaStreamCaptureModeThreadLocal);
      capturing = true;
      g->out = model_.deviceOutputs(staticIn);
      g->graph.capture_end();
    } catch (const std::exception& e) {
      if (capturing) abandonCapture();
      ungraphable_.insert(key);
      std::fprintf(stderr, "torch backend: no CUDA graph for this input shape, running it as usual: %s\n",
                   message(e).c_str());
      return std::nullopt;
    }
    it = graphs_.emplace(key, std::move(g)).first;
  }
  Graph& g = *it->second;
  for (size_t i = 0; i < in.size(); ++i) g.in[i].copy_(in[i].toTensor(), /*non_blocking=*/true);
  g.graph.replay();
  return g.out;  // static: hostOutputs copies them before the next replay
}

void TorchRunner::dropGraphs() {
  // At most once a minute: a tenant that keeps sending batches too large for
  // any GPU must not make every worker capture its shapes again each time.
  auto now = std::chrono::steady_clock::now();
  if (graphs_.empty() || (lastDrop_ && now - *lastDrop_ < std::chrono::minutes(1))) return;
  lastDrop_ = now;
  size_t n = graphs_.size();
  graphs_.clear();  // each graph gives its share of the pool back
  ungraphable_.clear();  // a capture that failed for want of memory, or past kMaxGraphs, may succeed now
  pool_.reset();
  releaseCachedMemory();
  std::fprintf(stderr,
               "torch backend: out of GPU memory: gave back the memory of this worker's %zu CUDA graph(s); each "
               "shape is captured again when it comes back\n",
               n);
}

void TorchRunner::abandonCapture() {
  // Each step may already have happened (capture_end can fail after ending
  // the stream's capture), so each is tried on its own. Without the last two,
  // the caching allocator would go on routing this thread's allocations to a
  // capture that no longer exists, and refuse to empty its cache.
  cudaGraph_t broken = nullptr;
  if (cudaStreamEndCapture(stream_->stream(), &broken) == cudaSuccess && broken) cudaGraphDestroy(broken);
  cudaGetLastError();
  auto* allocator = c10::cuda::CUDACachingAllocator::get();
  try {
    allocator->endAllocateToPool(model_.device().index(), *pool_);
  } catch (const std::exception&) {
  }
  try {
    allocator->releasePool(model_.device().index(), *pool_);
  } catch (const std::exception&) {
  }
  if (graphs_.empty()) pool_.reset();  // else the graphs captured before keep sharing it
}
#endif

std::vector<TensorSpec> declared(const nlohmann::json& config, const char* key) {
  if (!config.contains(key))
    throw Error(KAB_INVALID, std::string("config.json must declare \"") + key +
                                 "\" for the torch backend: a TorchScript model carries no typed signature");
  std::vector<TensorSpec> out;
  for (const auto& t : config[key]) {
    TensorSpec s{t["name"].get<std::string>(), t["datatype"].get<std::string>(), t["dims"].get<std::vector<int64_t>>()};
    if (!scalarType(s.datatype))
      throw Error(KAB_INVALID, std::string(key == std::string("inputs") ? "input" : "output") + " '" + s.name +
                                   "': datatype " + s.datatype + " has no libtorch " + libtorchVersion() + " type");
    out.push_back(std::move(s));
  }
  return out;
}

// Device from config ("cpu", "cuda") and the served device's PCI address.
void pickDevice(const std::string& wanted, const char* pciBusId, Settings& s) {
  if (wanted != "cuda") return;
  if (!torch::cuda::is_available())
    throw Error(KAB_UNAVAILABLE, "device 'cuda': this libtorch (" + libtorchVersion() +
                                     ") has no CUDA, or no CUDA device is visible to the agent");
  int ordinal = cudaOrdinalOfPciBusId(pciBusId ? pciBusId : "");  // throws Error with the reason
  s.device = c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(ordinal));
  s.deviceText = "cuda:" + std::to_string(ordinal) + " (" + pciBusId + ")";
}

std::unique_ptr<Model> load(const kab_load_args& args) {
  auto config = nlohmann::json::parse(args.config_json);
  Settings s;
  s.inputs = declared(config, "inputs");
  s.outputs = declared(config, "outputs");
  s.precision = precisionOf(config.value("precision", "fp32"));
  s.threads = config.value("threads", 0);
  pickDevice(config.value("device", "cpu"), args.pci_bus_id, s);
  std::string file = pickModelFile(args.version_dir, {"model.pt", "model.pt2"});
  const bool aoti = file.size() >= 4 && file.compare(file.size() - 4, 4, ".pt2") == 0;
  // The agent's model config checked the key. On by default for TorchScript
  // on CUDA; an AOTInductor package manages its own stream and events, so
  // only when asked for.
  s.cudaGraphs = config.value("cuda_graphs", s.device.is_cuda() && !aoti);
  if (s.threads > 0) {
    // libtorch's intra-op pool is process-wide: the last model loaded sets it.
    static std::mutex mu;
    std::lock_guard lock(mu);
    at::set_num_threads(s.threads);
  }
  std::unique_ptr<Engine> engine;
  if (aoti) {
#if KUBEACCEL_TORCH_HAS_AOTI
    try {
      c10::DeviceGuard guard(s.device);
      engine = std::make_unique<AotiEngine>(file, s.device);
    } catch (const std::exception& e) {
      throw Error(KAB_INVALID, file + ": not an AOTInductor package this libtorch can load: " + message(e));
    }
#else
    throw Error(KAB_UNAVAILABLE, file + ": an AOTInductor package (.pt2) needs libtorch >= 2.6; this torch backend "
                                        "was built against libtorch " + libtorchVersion() +
                                        " (export TorchScript as model.pt instead, see docs/models.md)");
#endif
  } else {
    try {
      torch::jit::Module m = torch::jit::load(file, s.device);
      m.eval();
      if (s.precision.type != at::kFloat) m.to(s.precision.type);
      engine = std::make_unique<ScriptEngine>(std::move(m));
    } catch (const std::exception& e) {
      throw Error(KAB_INVALID, file + ": not a TorchScript archive libtorch " + libtorchVersion() +
                                   " can load: " + message(e));
    }
  }
  auto model = std::make_unique<TorchModel>(std::move(engine), std::move(s));
  model->dryRun();
  return model;
}

// kab_backend.pin_host_memory: page-locks a pod's shared-memory region for
// every GPU (portable), so copies to and from it need no staging buffer.
void pinHostMemory(void* ptr, size_t bytes) {
#ifdef KUBEACCEL_TORCH_CUDA
  if (!torch::cuda::is_available()) throw Error(KAB_UNAVAILABLE, "no CUDA device is visible to the agent");
  cudaError_t rc = cudaHostRegister(ptr, bytes, cudaHostRegisterPortable);
  if (rc != cudaSuccess) {
    cudaGetLastError();  // clear it: the next CUDA call must not see it
    throw Error(KAB_INTERNAL, "cudaHostRegister of " + std::to_string(bytes) + " bytes: " + cudaGetErrorString(rc));
  }
#else
  (void)ptr;
  (void)bytes;
  throw Error(KAB_UNAVAILABLE, "this torch backend was built without CUDA");
#endif
}

void unpinHostMemory(void* ptr) {
#ifdef KUBEACCEL_TORCH_CUDA
  if (cudaHostUnregister(ptr) != cudaSuccess) cudaGetLastError();
#else
  (void)ptr;
#endif
}

Definition definition() {
  std::string platform = "CPU";
  if (torch::cuda::is_available()) platform += " + " + std::to_string(torch::cuda::device_count()) + " CUDA device(s)";
  return {"torch", platform + " (libtorch " + libtorchVersion() + ")", {"model.pt", "model.pt2"}, load,
          pinHostMemory, unpinHostMemory};
}

}  // namespace
}  // namespace kubeaccel::backend

KUBEACCEL_DEFINE_BACKEND(kubeaccel::backend::definition())
