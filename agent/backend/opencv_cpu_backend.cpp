#include "backend/opencv_cpu_backend.hpp"

#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>

#include <algorithm>
#include <climits>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "backend/onnx_signature.hpp"
#include "util/read_file.hpp"

namespace kubeaccel::agent {
namespace {

std::vector<TensorSpec> select(const std::vector<TensorSpec>& all, const std::vector<std::string>& names,
                               const char* what) {
  if (names.empty()) return all;
  std::vector<TensorSpec> out;
  for (const auto& n : names) {
    auto it = std::find_if(all.begin(), all.end(), [&](const TensorSpec& t) { return t.name == n; });
    if (it == all.end()) throw std::runtime_error(std::string("config names ") + what + " '" + n + "', which the model lacks");
    out.push_back(*it);
  }
  return out;
}

class Runner final : public ModelRunner {
 public:
  Runner(const std::string& bytes, const std::vector<TensorSpec>& inputs, const std::vector<TensorSpec>& outputs)
      : inputs_(inputs), outputs_(outputs) {
    net_ = cv::dnn::readNetFromONNX(bytes.data(), bytes.size());
    net_.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
    net_.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
    for (const auto& o : outputs_) outNames_.push_back(o.name);
  }

  std::vector<OutputTensor> run(const std::vector<InputTensor>& inputs) override {
    if (inputs.size() != inputs_.size())
      throw std::runtime_error("expected " + std::to_string(inputs_.size()) + " inputs, got " +
                               std::to_string(inputs.size()));
    for (size_t i = 0; i < inputs.size(); ++i) {
      // The request checks keep sizes within limits(); this guards the narrowing
      // to int below should any caller ever pass something else.
      std::vector<int> dims;
      for (int64_t d : inputs[i].shape) {
        if (d < 1 || d > INT32_MAX)
          throw std::runtime_error("input '" + inputs_[i].name + "': dim " + std::to_string(d) + " out of range");
        dims.push_back(static_cast<int>(d));
      }
      auto bytes = byteCount("FP32", inputs[i].shape);
      if (inputs[i].datatype != "FP32" || !bytes || *bytes != inputs[i].data.size())
        throw std::runtime_error("input '" + inputs_[i].name + "': " + std::to_string(inputs[i].data.size()) +
                                 " bytes do not make " + inputs[i].datatype + " " + shapeString(inputs[i].shape));
      // OpenCV reads the request's bytes in place; setInput copies them into the net.
      cv::Mat blob(static_cast<int>(dims.size()), dims.data(), CV_32F,
                   const_cast<std::byte*>(inputs[i].data.data()));
      net_.setInput(blob, inputs_[i].name);
    }
    std::vector<cv::Mat> outs;
    net_.forward(outs, outNames_);
    std::vector<OutputTensor> result(outs.size());
    for (size_t i = 0; i < outs.size(); ++i) {
      cv::Mat m = outs[i].isContinuous() ? outs[i] : outs[i].clone();
      if (m.depth() != CV_32F) m.convertTo(m, CV_32F);
      OutputTensor& t = result[i];
      t.name = outputs_[i].name;
      t.datatype = "FP32";
      for (int d = 0; d < m.dims; ++d) t.shape.push_back(m.size[d]);
      t.data.resize(m.total() * m.elemSize());
      std::memcpy(t.data.data(), m.data, t.data.size());
    }
    return result;
  }

 private:
  cv::dnn::Net net_;
  std::vector<TensorSpec> inputs_, outputs_;
  std::vector<std::string> outNames_;
};

class Model final : public LoadedModel {
 public:
  Model(std::string bytes, std::vector<TensorSpec> inputs, std::vector<TensorSpec> outputs)
      : bytes_(std::move(bytes)), inputs_(std::move(inputs)), outputs_(std::move(outputs)) {}
  const std::vector<TensorSpec>& inputs() const override { return inputs_; }
  const std::vector<TensorSpec>& outputs() const override { return outputs_; }
  std::unique_ptr<ModelRunner> newRunner() const override {
    return std::make_unique<Runner>(bytes_, inputs_, outputs_);
  }

 private:
  std::string bytes_;
  std::vector<TensorSpec> inputs_, outputs_;
};

}  // namespace

std::string OpenCvCpuBackend::platform() const { return std::string("CPU (OpenCV DNN ") + CV_VERSION + ")"; }

std::unique_ptr<LoadedModel> OpenCvCpuBackend::load(const std::string& modelFile, const ModelConfig& config) {
  auto file = readFile(modelFile);
  if (!file) throw std::runtime_error("cannot read " + modelFile + ": " + std::strerror(errno));
  std::string bytes = std::move(*file);
  OnnxSignature sig = readOnnxSignature(bytes);
  auto inputs = select(sig.inputs, config.inputNames, "input");
  auto outputs = select(sig.outputs, config.outputNames, "output");
  for (const auto& t : inputs)
    if (t.datatype != "FP32")
      throw std::runtime_error("input '" + t.name + "' is " + t.datatype + "; opencv-cpu takes FP32 inputs only");
  for (const auto& t : outputs)
    if (t.datatype != "FP32")
      throw std::runtime_error("output '" + t.name + "' is " + t.datatype + "; opencv-cpu gives FP32 outputs only");
  auto model = std::make_unique<Model>(std::move(bytes), std::move(inputs), std::move(outputs));
  // Import once now, so a model OpenCV cannot take is reported at load time.
  try {
    model->newRunner();
  } catch (const cv::Exception& e) {
    std::string msg = e.err.empty() ? e.what() : e.err;
    throw std::runtime_error("OpenCV DNN cannot import it: " + msg);
  }
  return model;
}

}  // namespace kubeaccel::agent
