#pragma once
// Turns a ModelInferRequest into the scheduler's inputs, checking it against
// the model's metadata: names, datatypes (no silent conversion), shapes (-1 is
// a wildcard), byte counts, shared-memory regions. Every refusal is
// INVALID_ARGUMENT (or NOT_FOUND for a region) saying what was expected.

#include <optional>
#include <string>
#include <vector>

#include <grpcpp/support/status.h>

#include "backend/tensor.hpp"
#include "inference/grpc_service.pb.h"
#include "repository/model_repository.hpp"
#include "shm/shm_registry.hpp"

namespace kubeaccel::agent {

struct RequestedOutput {
  std::string name;
  std::optional<ShmView> shm;  // written here instead of raw_output_contents
  std::string shmRegion;
};

struct PreparedInfer {
  std::vector<InputTensor> inputs;  // in model input order
  int64_t rows = 1;
  std::vector<RequestedOutput> outputs;    // in the order the response lists them
  std::vector<std::vector<std::byte>> owned;  // typed contents, as bytes
  std::vector<ShmView> shmInputs;             // keeps input mappings alive
};

// The response's outputs in the requested order (all of the model's when none
// were named), from the runner's outputs.
grpc::Status prepareInfer(const inference::ModelInferRequest& req, const ServedModel& model, const ShmRegistry& shm,
                          PreparedInfer* out);

// Where the engine may write each of the model's outputs itself (one span
// per model output, in its order; empty when none): the requested outputs'
// shared-memory ranges that are pinned for the device.
OutputDestinations outputDestinations(const ServedModel& model, const PreparedInfer& prepared);

// Fills `resp` from the outputs; writes shared-memory outputs into their
// regions (those the engine wrote there itself are left as they are).
grpc::Status buildInferResponse(const inference::ModelInferRequest& req, const ServedModel& model,
                                const PreparedInfer& prepared, std::vector<OutputTensor>& outputs,
                                inference::ModelInferResponse* resp);

}  // namespace kubeaccel::agent
