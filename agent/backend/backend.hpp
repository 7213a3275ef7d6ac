#pragma once
// The narrow interface between the serving core and an inference engine, as
// the core sees it. The one implementation, AbiBackend (abi_backend.hpp),
// forwards to a backend library through the C ABI in kubeaccel_backend.h.
// Backends know nothing of sockets, gRPC or slots.

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "backend/tensor.hpp"
#include "repository/model_config.hpp"
#include "shm/host_memory_pinner.hpp"

namespace kubeaccel::agent {

// What ModelRunner::run throws when the engine ran out of memory for that
// run (a GPU allocation): the run's requests fail RESOURCE_EXHAUSTED, with
// the engine's message (it says how much was asked for).
struct EngineOutOfMemory : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Runs one model on one worker thread; not thread-safe (a worker owns it).
class ModelRunner {
 public:
  virtual ~ModelRunner() = default;
  // `inputs` are in the model's input order, batched along dim 0 when the
  // model is batched. Returns the outputs in the model's output order.
  // `destinations` (empty, or one per output): memory pinned for the device
  // where the engine may write an output itself (a pod's pinned shared-memory
  // range); such an output comes back with inDestination set.
  // Throws EngineOutOfMemory when the engine ran out of memory, and
  // std::runtime_error with the engine's message when the run fails otherwise.
  virtual std::vector<OutputTensor> run(const std::vector<InputTensor>& inputs,
                                        const OutputDestinations& destinations) = 0;
};

// The tensor sizes an engine can take. The request checks refuse anything
// outside them before a request is queued, so a runner never narrows a size
// that does not fit (OpenCV's cv::Mat takes `int` dims, for one).
struct EngineLimits {
  int64_t minDim = 1;                // smallest size of any dim (0: empty tensors allowed)
  int64_t maxDim = INT32_MAX;        // largest size of any dim
  int64_t maxElements = INT32_MAX;   // largest element count of one input tensor
};

// A model loaded for one device.
class LoadedModel {
 public:
  virtual ~LoadedModel() = default;
  virtual EngineLimits limits() const { return {}; }
  virtual const std::vector<TensorSpec>& inputs() const = 0;
  virtual const std::vector<TensorSpec>& outputs() const = 0;
  // How it runs ("cpu, 2 threads, fp16"); may be empty.
  virtual std::string info() const { return ""; }
  // A runner for one worker thread. Throws std::runtime_error on failure.
  virtual std::unique_ptr<ModelRunner> newRunner() const = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  // What the work runs on, for metadata and logs ("CPU (OpenCV DNN 4.6.0)").
  virtual std::string platform() const = 0;
  // The file names a version folder holds for this backend ("model.onnx"), in
  // order of preference.
  virtual std::vector<std::string> modelFiles() const = 0;
  // Loads the model in `versionDir` (<models>/<name>/<version>) with its
  // config.json text (`configJson`, "{}" when absent; `config` is the same,
  // parsed and checked). Throws std::runtime_error with the reason for a
  // corrupt or unsupported model.
  virtual std::unique_ptr<LoadedModel> load(const std::string& versionDir, const std::string& configJson,
                                            const ModelConfig& config) = 0;
  // Pins shared-memory regions for the engine's device, or null when the
  // backend has no use for it. Lives as long as the backend.
  virtual HostMemoryPinner* hostMemoryPinner() { return nullptr; }
};

}  // namespace kubeaccel::agent
