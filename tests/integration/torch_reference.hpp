#pragma once
// libtorch in the test process: the torch backend's engine, run directly on
// a model file, as the reference the agent's answers must equal. The header
// has no torch types, so only torch_reference.cpp pays for torch's headers.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace kubeaccel::testing {

struct FloatTensor {
  std::vector<int64_t> shape;
  std::vector<float> data;
};

class TorchReference {
 public:
  explicit TorchReference(const std::string& modelPt);
  ~TorchReference();
  // Runs forward on FP32 inputs; the outputs as `outputNames` name them: a
  // tensor (one name), a tuple or list (by order) or a dict (by key).
  std::vector<FloatTensor> run(const std::vector<FloatTensor>& inputs, const std::vector<std::string>& outputNames);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kubeaccel::testing
