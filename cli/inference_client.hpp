#pragma once
// A KServe v2 client for one slot socket, as `kubeaccel infer` and `bench` use it.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "inference/grpc_service.grpc.pb.h"

namespace kubeaccel {

struct ClientTensor {
  std::string name;
  std::string datatype;
  std::vector<int64_t> shape;
  std::string bytes;  // row-major, little-endian
};

class InferenceClient {
 public:
  // `target` is "unix:///path/inference.sock" (or "unix:/path"). Throws
  // std::invalid_argument for any other form.
  InferenceClient(const std::string& target, std::chrono::milliseconds deadline);

  const std::string& socketPath() const { return socketPath_; }
  grpc::Status metadata(const std::string& model, inference::ModelMetadataResponse* out);
  // Inputs for `model` from its metadata: -1 dims become `batch` (dim 0) or 1,
  // FP32 values uniform in [0, 1) from a fixed seed.
  static std::vector<ClientTensor> randomInputs(const inference::ModelMetadataResponse& meta, int batch,
                                                unsigned seed = 42);
  grpc::Status infer(const std::string& model, const std::vector<ClientTensor>& inputs,
                     std::vector<ClientTensor>* outputs);
  // The same through the system-shared-memory extension: inputs and outputs
  // cross in a file in the slot directory (next to the socket).
  grpc::Status inferShm(const std::string& model, const inference::ModelMetadataResponse& meta,
                        const std::vector<ClientTensor>& inputs, std::vector<ClientTensor>* outputs);

 private:
  std::unique_ptr<grpc::ClientContext> context() const;

  std::string socketPath_;
  std::chrono::milliseconds deadline_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<inference::GRPCInferenceService::Stub> stub_;
};

// Resolves a --socket value: "unix:///p" or "unix:/p" -> "/p".
std::string socketPathOf(const std::string& target);

}  // namespace kubeaccel
