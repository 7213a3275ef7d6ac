#pragma once
// The declared inputs and outputs of an ONNX graph (names, element types,
// shapes; symbolic dims as -1), read from the file's protobuf wire format.
// OpenCV 4.6 does not report them, and metadata and request checks need them.

#include <string>
#include <vector>

#include "backend/tensor.hpp"

namespace kubeaccel::agent {

struct OnnxSignature {
  std::vector<TensorSpec> inputs;   // graph inputs that are not initializers
  std::vector<TensorSpec> outputs;
};

// Throws std::runtime_error with the reason when the bytes are not an ONNX model.
OnnxSignature readOnnxSignature(const std::string& bytes);

}  // namespace kubeaccel::agent
