#pragma once
// <models>/<name>/config.json: how the agent serves a model. Every key is optional.
// The agent checks every key here; the backend gets the same text and reads
// the keys it uses (inputs/outputs, precision, threads, device).

#include <chrono>
#include <string>
#include <vector>

#include "backend/tensor.hpp"

namespace kubeaccel::agent {

struct ModelConfig {
  // Largest batch the agent forms (or accepts) along dim 0; 0: the model is
  // not batched by the agent and its shapes are taken as they are.
  int maxBatchSize = 0;
  // Dynamic batching: requests for the model wait up to this long for others
  // to join them, unless a preferred batch size is reached first.
  bool dynamicBatching = false;
  std::chrono::microseconds maxQueueDelay{0};
  std::vector<int> preferredBatchSizes;
  // Which graph inputs/outputs to expose (default: all), in this order.
  std::vector<std::string> inputNames;
  std::vector<std::string> outputNames;
  int instanceCount = 1;  // workers (each with its own backend instance) per device
  // Declared signature, for engines whose model files carry none (TorchScript):
  // full dims, -1 for any size (the batch dim of a batched model included).
  std::vector<TensorSpec> inputs;
  std::vector<TensorSpec> outputs;
  std::string precision = "fp32";  // fp32, fp16 or bf16: what the engine computes in
  int threads = 0;                 // engine CPU threads; 0: the engine's default
  std::string device = "cpu";      // cpu or cuda
  bool cudaGraphs = false;         // torch on cuda: replay CUDA graphs of small batch shapes (default on cuda)
};

// Throws std::runtime_error with a one-line message naming the key.
ModelConfig parseModelConfig(const std::string& jsonText, const std::string& origin);

}  // namespace kubeaccel::agent
