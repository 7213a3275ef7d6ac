#pragma once
// The narrow interface between the serving core and an inference engine.
// Backends know nothing of sockets, gRPC or slots.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backend/tensor.hpp"
#include "repository/model_config.hpp"

namespace kubeaccel::agent {

// Runs one model on one worker thread; not thread-safe (a worker owns it).
class ModelRunner {
 public:
  virtual ~ModelRunner() = default;
  // `inputs` are in the model's input order, batched along dim 0 when the
  // model is batched. Throws std::runtime_error when the engine fails.
  virtual std::vector<OutputTensor> run(const std::vector<InputTensor>& inputs) = 0;
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
  virtual std::unique_ptr<ModelRunner> newRunner() const = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  // What the work runs on, for metadata and logs ("CPU (OpenCV DNN 4.6.0)").
  virtual std::string platform() const = 0;
  // Throws std::runtime_error with the reason for a corrupt or unsupported model.
  virtual std::unique_ptr<LoadedModel> load(const std::string& modelFile, const ModelConfig& config) = 0;
};

}  // namespace kubeaccel::agent
