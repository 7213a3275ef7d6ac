#pragma once
// OpenCV DNN 4.6 on the CPU: the embedded default engine. One cv::dnn::Net
// per runner, since a Net is not thread-safe.

#include "backend/backend.hpp"

namespace kubeaccel::agent {

class OpenCvCpuBackend final : public Backend {
 public:
  std::string name() const override { return "opencv-cpu"; }
  std::string platform() const override;
  std::unique_ptr<LoadedModel> load(const std::string& modelFile, const ModelConfig& config) override;
};

}  // namespace kubeaccel::agent
