// libFuzzer target: the agent's request checks (prepareInfer) and the answer's
// shared-memory writes (buildInferResponse).
//
// Input: one byte choosing the model (fuzz_world.hpp), then a serialized
// inference.ModelInferRequest. Whatever the request, a request the checks
// accept must describe its inputs exactly: every dim within the engine's
// limits, the byte count equal to elements x datatype size (computed here in
// 128 bits), the bytes inside the request, an owned buffer or a registered
// region. Every accepted byte is read, and every shared-memory output byte
// written, so ASan or a fault catches a view that is wrong.
#include <cstdio>
#include <cstring>

#include "fuzz_world.hpp"
#include "server/infer_request.hpp"

namespace {

using namespace kubeaccel;
using agent::InputTensor;

[[noreturn]] void broken(const char* what, const std::string& detail) {
  std::fprintf(stderr, "invariant broken: %s: %s\n", what, detail.c_str());
  std::abort();
}

bool within(const std::byte* p, size_t n, const void* base, size_t size) {
  auto b = reinterpret_cast<uintptr_t>(base), q = reinterpret_cast<uintptr_t>(p);
  return q >= b && q - b <= size && n <= size - (q - b);
}

// The input's bytes lie in one buffer the request owns or names.
bool ownedBySomeone(const InputTensor& t, const inference::ModelInferRequest& req, const agent::PreparedInfer& p) {
  if (t.data.empty()) return true;
  for (const auto& raw : req.raw_input_contents())
    if (within(t.data.data(), t.data.size(), raw.data(), raw.size())) return true;
  for (const auto& buf : p.owned)
    if (within(t.data.data(), t.data.size(), buf.data(), buf.size())) return true;
  for (const auto& v : p.shmInputs)
    if (within(t.data.data(), t.data.size(), v.bytes.data(), v.bytes.size())) return true;
  return false;
}

void checkAccepted(const inference::ModelInferRequest& req, const agent::ServedModel& model,
                   const agent::PreparedInfer& p) {
  const auto& specs = model.loaded->inputs();
  const agent::EngineLimits limits = model.loaded->limits();
  if (p.inputs.size() != specs.size()) broken("input count", std::to_string(p.inputs.size()));
  if (model.batched() && (p.rows < 1 || p.rows > model.config.maxBatchSize)) broken("rows", std::to_string(p.rows));
  unsigned sum = 0;
  for (size_t i = 0; i < p.inputs.size(); ++i) {
    const InputTensor& t = p.inputs[i];
    if (t.name != specs[i].name || t.datatype != specs[i].datatype) broken("name/datatype", t.name);
    if (t.shape.size() != specs[i].shape.size()) broken("rank", t.name);
    __int128 elements = 1;
    for (size_t d = 0; d < t.shape.size(); ++d) {
      if (t.shape[d] < limits.minDim || t.shape[d] > limits.maxDim) broken("dim out of limits", t.name);
      if (specs[i].shape[d] >= 0 && !(d == 0 && model.batched()) && t.shape[d] != specs[i].shape[d])
        broken("fixed dim", t.name);
      elements *= t.shape[d];
    }
    if (model.batched() && t.shape[0] != p.rows) broken("batch dim", t.name);
    if (elements > limits.maxElements) broken("element count", t.name);
    if (static_cast<__int128>(t.data.size()) != elements * static_cast<__int128>(agent::elementSize(t.datatype)))
      broken("byte count", t.name + ": " + std::to_string(t.data.size()) + " bytes for " + agent::shapeString(t.shape));
    if (!ownedBySomeone(t, req, p)) broken("bytes outside the request", t.name);
    for (std::byte b : t.data) sum += static_cast<unsigned>(b);  // ASan: every byte readable
  }
  (void)sum;

  // An engine's outputs for these rows, then the answer (shared-memory outputs written).
  std::vector<agent::OutputTensor> outputs;
  for (const auto& o : model.loaded->outputs()) {
    agent::OutputTensor t{o.name, o.datatype, o.shape, {}};
    for (auto& d : t.shape) d = d < 0 ? p.rows : d;
    auto bytes = agent::byteCount(t.datatype, t.shape);
    if (!bytes || *bytes > (1u << 20)) return;
    t.data.assign(*bytes, std::byte{0x5a});
    outputs.push_back(std::move(t));
  }
  inference::ModelInferResponse resp;
  grpc::Status s = agent::buildInferResponse(req, model, p, outputs, &resp);
  if (s.ok() && resp.outputs_size() != static_cast<int>(p.outputs.size())) broken("output count", "");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const auto& models = fuzz::models();
  const agent::ServedModel& model = models[data[0] % models.size()];
  inference::ModelInferRequest req;
  if (!req.ParseFromArray(data + 1, static_cast<int>(size - 1))) return 0;
  agent::PreparedInfer prepared;
  grpc::Status s = agent::prepareInfer(req, model, *fuzz::slotWorld().shm, &prepared);
  if (s.ok()) {
    checkAccepted(req, model, prepared);
  } else {
    if (s.error_message().empty()) broken("a refusal without a message", std::to_string(s.error_code()));
    if (s.error_code() == grpc::StatusCode::OK || s.error_code() == grpc::StatusCode::INTERNAL ||
        s.error_code() == grpc::StatusCode::UNKNOWN)
      broken("a refusal with an unexpected code", s.error_message());
  }
  return 0;
}
