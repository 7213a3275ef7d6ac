// The opencv-cpu backend: OpenCV DNN 4.6 on the CPU, for ONNX models. One
// cv::dnn::Net per runner, since a Net is not thread-safe. The signature
// comes from the ONNX file (the agent's onnx_signature.cpp, compiled in),
// because OpenCV 4.6 does not report it.

#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <fstream>
#include <sstream>

#include "backend/onnx_signature.hpp"
#include "backend_support.hpp"

namespace kubeaccel::backend {
namespace {

using agent::byteCount;
using agent::shapeString;

std::vector<std::string> names(const nlohmann::json& config, const char* key) {
  std::vector<std::string> out;
  if (config.contains(key))
    for (const auto& n : config[key]) out.push_back(n.get<std::string>());
  return out;
}

std::vector<TensorSpec> select(const std::vector<TensorSpec>& all, const std::vector<std::string>& names,
                               const char* what) {
  if (names.empty()) return all;
  std::vector<TensorSpec> out;
  for (const auto& n : names) {
    auto it = std::find_if(all.begin(), all.end(), [&](const TensorSpec& t) { return t.name == n; });
    if (it == all.end()) throw Error(KAB_INVALID, std::string("config names ") + what + " '" + n + "', which the model lacks");
    out.push_back(*it);
  }
  return out;
}

class OpenCvRunner final : public Runner {
 public:
  OpenCvRunner(const std::string& bytes, const std::vector<TensorSpec>& inputs, const std::vector<TensorSpec>& outputs)
      : inputs_(inputs), outputs_(outputs) {
    net_ = cv::dnn::readNetFromONNX(bytes.data(), bytes.size());
    net_.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
    net_.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
    for (const auto& o : outputs_) outNames_.push_back(o.name);
  }

  void run(std::span<const kab_input> inputs, std::span<kab_output> outputs) override {
    if (inputs.size() != inputs_.size() || outputs.size() != outputs_.size())
      throw Error(KAB_INVALID, "expected " + std::to_string(inputs_.size()) + " inputs and " +
                                   std::to_string(outputs_.size()) + " outputs, got " + std::to_string(inputs.size()) +
                                   " and " + std::to_string(outputs.size()));
    for (size_t i = 0; i < inputs.size(); ++i) {
      // The agent's checks keep sizes within limits(); this guards the
      // narrowing to int below should any caller ever pass something else.
      std::vector<int64_t> shape(inputs[i].shape, inputs[i].shape + inputs[i].rank);
      std::vector<int> dims;
      for (int64_t d : shape) {
        if (d < 1 || d > INT32_MAX)
          throw Error(KAB_INVALID, "input '" + inputs_[i].name + "': dim " + std::to_string(d) + " out of range");
        dims.push_back(static_cast<int>(d));
      }
      auto bytes = byteCount("FP32", shape);
      if (std::strcmp(inputs[i].datatype, "FP32") != 0 || !bytes || *bytes != inputs[i].bytes)
        throw Error(KAB_INVALID, "input '" + inputs_[i].name + "': " + std::to_string(inputs[i].bytes) +
                                     " bytes do not make " + inputs[i].datatype + " " + shapeString(shape));
      // OpenCV reads the agent's bytes in place; setInput copies them into the net.
      cv::Mat blob(static_cast<int>(dims.size()), dims.data(), CV_32F, const_cast<void*>(inputs[i].data));
      net_.setInput(blob, inputs_[i].name);
    }
    std::vector<cv::Mat> outs;
    try {
      net_.forward(outs, outNames_);
    } catch (const cv::Exception& e) {
      throw Error(KAB_INTERNAL, e.what());
    }
    for (size_t i = 0; i < outs.size() && i < outputs.size(); ++i) {
      cv::Mat m = outs[i].isContinuous() ? outs[i] : outs[i].clone();
      if (m.depth() != CV_32F) m.convertTo(m, CV_32F);
      std::vector<int64_t> shape;
      for (int d = 0; d < m.dims; ++d) shape.push_back(m.size[d]);
      // The Mat (reference-counted) keeps its data until the agent has read it.
      const void* data = m.data;
      size_t bytes = m.total() * m.elemSize();
      setOutput(outputs[i], "FP32", shape, m, data, bytes);
    }
  }

 private:
  cv::dnn::Net net_;
  std::vector<TensorSpec> inputs_, outputs_;
  std::vector<std::string> outNames_;
};

class OpenCvModel final : public Model {
 public:
  OpenCvModel(std::string bytes, std::vector<TensorSpec> inputs, std::vector<TensorSpec> outputs)
      : bytes_(std::move(bytes)), inputs_(std::move(inputs)), outputs_(std::move(outputs)) {}
  const std::vector<TensorSpec>& inputs() const override { return inputs_; }
  const std::vector<TensorSpec>& outputs() const override { return outputs_; }
  std::unique_ptr<Runner> newRunner() override { return std::make_unique<OpenCvRunner>(bytes_, inputs_, outputs_); }

 private:
  std::string bytes_;
  std::vector<TensorSpec> inputs_, outputs_;
};

std::unique_ptr<Model> load(const kab_load_args& args) {
  std::string file = pickModelFile(args.version_dir, {"model.onnx"});
  // The agent checked the config's keys and values; refuse what OpenCV cannot honour.
  auto config = nlohmann::json::parse(args.config_json);
  if (config.value("precision", "fp32") != "fp32")
    throw Error(KAB_INVALID, "precision '" + config["precision"].get<std::string>() + "': opencv-cpu runs fp32 only");
  if (config.value("device", "cpu") != "cpu")
    throw Error(KAB_UNAVAILABLE, "device '" + config["device"].get<std::string>() + "': opencv-cpu runs on the CPU only");
  if (config.contains("inputs") || config.contains("outputs"))
    throw Error(KAB_INVALID, "opencv-cpu reads the signature from the ONNX file; select tensors with input_names / "
                             "output_names instead of declaring inputs / outputs");
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error(KAB_INVALID, "cannot read " + file + ": " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string bytes = ss.str();
  agent::OnnxSignature sig;
  try {
    sig = agent::readOnnxSignature(bytes);
  } catch (const std::exception& e) {
    throw Error(KAB_INVALID, e.what());
  }
  auto inputs = select(sig.inputs, names(config, "input_names"), "input");
  auto outputs = select(sig.outputs, names(config, "output_names"), "output");
  for (const auto& t : inputs)
    if (t.datatype != "FP32")
      throw Error(KAB_INVALID, "input '" + t.name + "' is " + t.datatype + "; opencv-cpu takes FP32 inputs only");
  for (const auto& t : outputs)
    if (t.datatype != "FP32")
      throw Error(KAB_INVALID, "output '" + t.name + "' is " + t.datatype + "; opencv-cpu gives FP32 outputs only");
  auto model = std::make_unique<OpenCvModel>(std::move(bytes), std::move(inputs), std::move(outputs));
  // Import once now, so a model OpenCV cannot take is reported at load time.
  try {
    model->newRunner();
  } catch (const cv::Exception& e) {
    std::string msg = e.err.empty() ? e.what() : e.err;
    throw Error(KAB_INVALID, "OpenCV DNN cannot import it: " + msg);
  }
  return model;
}

Definition definition() {
  return {"opencv-cpu", std::string("CPU (OpenCV DNN ") + CV_VERSION + ")", {"model.onnx"}, load};
}

}  // namespace
}  // namespace kubeaccel::backend

KUBEACCEL_DEFINE_BACKEND(kubeaccel::backend::definition())
