#pragma once
// <models>/<name>/config.json: how the agent serves a model. Every key is optional.

#include <chrono>
#include <string>
#include <vector>

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
};

// Throws std::runtime_error with a one-line message naming the key.
ModelConfig parseModelConfig(const std::string& jsonText, const std::string& origin);

}  // namespace kubeaccel::agent
