#include "server/infer_request.hpp"

#include <cstring>
#include <map>
#include <set>

namespace kubeaccel::agent {
namespace {

using inference::InferParameter;
using Params = google::protobuf::Map<std::string, InferParameter>;

grpc::Status invalid(const std::string& msg) { return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, msg); }

std::string describe(const std::vector<TensorSpec>& specs) {
  std::string s;
  for (const auto& t : specs) s += (s.empty() ? "" : ", ") + t.name + " (" + t.datatype + " " + shapeString(t.shape) + ")";
  return s;
}

// The shared-memory parameters of a tensor, if it names a region.
struct ShmRef {
  std::string region;
  uint64_t offset = 0;
  std::optional<uint64_t> byteSize;
};

grpc::Status shmRef(const Params& p, const std::string& what, std::optional<ShmRef>* out) {
  auto region = p.find("shared_memory_region");
  if (region == p.end()) {
    if (p.count("shared_memory_byte_size") || p.count("shared_memory_offset"))
      return invalid(what + ": shared_memory_byte_size/offset given without shared_memory_region");
    return grpc::Status::OK;
  }
  if (region->second.parameter_choice_case() != InferParameter::kStringParam)
    return invalid(what + ": shared_memory_region: expected a string");
  ShmRef ref{region->second.string_param(), 0, std::nullopt};
  for (const char* key : {"shared_memory_byte_size", "shared_memory_offset"}) {
    auto it = p.find(key);
    if (it == p.end()) continue;
    if (it->second.parameter_choice_case() != InferParameter::kInt64Param || it->second.int64_param() < 0)
      return invalid(what + ": " + key + ": expected a non-negative int64");
    uint64_t v = static_cast<uint64_t>(it->second.int64_param());
    if (std::string(key) == "shared_memory_offset")
      ref.offset = v;
    else
      ref.byteSize = v;
  }
  *out = ref;
  return grpc::Status::OK;
}

// Typed contents of a fixed-size datatype, as bytes; null when none are set.
template <typename T, typename Repeated>
bool copyTyped(const Repeated& values, std::vector<std::byte>& out) {
  if (values.empty()) return false;
  out.resize(values.size() * sizeof(T));
  size_t i = 0;
  for (auto v : values) {
    T x = static_cast<T>(v);
    std::memcpy(out.data() + i * sizeof(T), &x, sizeof(T));
    ++i;
  }
  return true;
}

bool typedContents(const std::string& dt, const inference::InferTensorContents& c, std::vector<std::byte>& out) {
  if (dt == "FP32") return copyTyped<float>(c.fp32_contents(), out);
  if (dt == "FP64") return copyTyped<double>(c.fp64_contents(), out);
  if (dt == "INT64") return copyTyped<int64_t>(c.int64_contents(), out);
  if (dt == "INT32") return copyTyped<int32_t>(c.int_contents(), out);
  if (dt == "INT16") return copyTyped<int16_t>(c.int_contents(), out);
  if (dt == "INT8") return copyTyped<int8_t>(c.int_contents(), out);
  if (dt == "UINT64") return copyTyped<uint64_t>(c.uint64_contents(), out);
  if (dt == "UINT32") return copyTyped<uint32_t>(c.uint_contents(), out);
  if (dt == "UINT16") return copyTyped<uint16_t>(c.uint_contents(), out);
  if (dt == "UINT8") return copyTyped<uint8_t>(c.uint_contents(), out);
  if (dt == "BOOL") return copyTyped<uint8_t>(c.bool_contents(), out);
  return false;
}

grpc::Status checkShape(const TensorSpec& spec, const std::vector<int64_t>& shape, const ServedModel& model,
                        const std::string& what) {
  std::vector<int64_t> want = spec.shape;
  if (model.batched() && !want.empty()) want[0] = -1;
  std::string expected = "expected shape " + shapeString(want) + " (-1: any size), got " + shapeString(shape);
  if (shape.size() != spec.shape.size()) return invalid(what + ": " + expected);
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] < 0) return invalid(what + ": " + expected);
    bool batchDim = d == 0 && model.batched();  // the agent batches along dim 0, whatever the graph says
    if (!batchDim && spec.shape[d] >= 0 && shape[d] != spec.shape[d]) return invalid(what + ": " + expected);
  }
  if (model.batched() && (shape.empty() || shape[0] < 1 || shape[0] > model.config.maxBatchSize))
    return invalid(what + ": batch size (dim 0) must be 1 to " + std::to_string(model.config.maxBatchSize) +
                   ", got " + (shape.empty() ? std::string("none") : std::to_string(shape[0])));
  return grpc::Status::OK;
}

// The dims within what the engine takes, and the tensor's byte count, with
// every multiplication overflow-checked (a wrapped count would let a few bytes
// pass for a huge tensor, which the engine would then read far past).
grpc::Status checkSize(const std::string& what, const std::string& datatype, const std::vector<int64_t>& shape,
                       const EngineLimits& limits, uint64_t* bytes) {
  for (size_t d = 0; d < shape.size(); ++d)
    if (shape[d] < limits.minDim || shape[d] > limits.maxDim)
      return invalid(what + ": dim " + std::to_string(d) + " of shape " + shapeString(shape) + " is " +
                     std::to_string(shape[d]) + "; the engine takes dims of " + std::to_string(limits.minDim) +
                     " to " + std::to_string(limits.maxDim));
  int64_t elements = elementCount(shape);
  if (elements < 0 || elements > limits.maxElements)
    return invalid(what + ": shape " + shapeString(shape) + " has " +
                   (elements < 0 ? std::string("more than 2^63") : std::to_string(elements)) +
                   " elements; the engine takes at most " + std::to_string(limits.maxElements) + " per tensor");
  auto n = byteCount(datatype, shape);
  if (!n) return invalid(what + ": the byte count of " + datatype + " " + shapeString(shape) + " does not fit 64 bits");
  *bytes = *n;
  return grpc::Status::OK;
}

}  // namespace

grpc::Status prepareInfer(const inference::ModelInferRequest& req, const ServedModel& model, const ShmRegistry& shm,
                          PreparedInfer* out) {
  const auto& specs = model.loaded->inputs();
  std::map<std::string, int> byName;  // model input -> request index
  for (int i = 0; i < req.inputs_size(); ++i) {
    const std::string& name = req.inputs(i).name();
    auto spec = std::find_if(specs.begin(), specs.end(), [&](const TensorSpec& s) { return s.name == name; });
    if (spec == specs.end())
      return invalid("unexpected input '" + name + "'; model '" + model.name + "' takes: " + describe(specs));
    if (!byName.emplace(name, i).second) return invalid("input '" + name + "' is given twice");
  }
  for (const auto& s : specs)
    if (!byName.count(s.name))
      return invalid("missing input '" + s.name + "'; model '" + model.name + "' takes: " + describe(specs));
  // raw_input_contents holds one entry per input that is not in shared
  // memory, in the order of those inputs (what Triton reads and tritonclient
  // sends); rawIndex maps a request input to its entry.
  bool raw = req.raw_input_contents_size() > 0;
  std::vector<int> rawIndex(static_cast<size_t>(req.inputs_size()), -1);
  std::string notInShm;
  int rawCount = 0;
  for (int i = 0; i < req.inputs_size(); ++i) {
    if (req.inputs(i).parameters().count("shared_memory_region")) continue;
    rawIndex[static_cast<size_t>(i)] = rawCount++;
    notInShm += (notInShm.empty() ? "" : ", ") + req.inputs(i).name();
  }
  if (raw && req.raw_input_contents_size() != rawCount)
    return invalid("raw_input_contents has " + std::to_string(req.raw_input_contents_size()) +
                   " entries; expected one per input not in shared memory (" + std::to_string(rawCount) +
                   (notInShm.empty() ? "" : ": " + notInShm) + ")");

  out->inputs.clear();
  out->owned.reserve(specs.size());
  for (size_t k = 0; k < specs.size(); ++k) {
    const TensorSpec& spec = specs[k];
    int i = byName[spec.name];
    const auto& in = req.inputs(i);
    std::string what = "input '" + spec.name + "'";
    if (in.datatype() != spec.datatype)
      return invalid(what + ": expected datatype " + spec.datatype + ", got '" + in.datatype() + "'");
    std::vector<int64_t> shape(in.shape().begin(), in.shape().end());
    if (auto s = checkShape(spec, shape, model, what); !s.ok()) return s;
    int64_t rows = model.batched() ? shape[0] : 1;
    if (k == 0) out->rows = rows;
    if (rows != out->rows)
      return invalid(what + ": batch size " + std::to_string(rows) + " differs from the other inputs' " +
                     std::to_string(out->rows));
    uint64_t expectBytes = 0;
    if (auto s = checkSize(what, spec.datatype, shape, model.loaded->limits(), &expectBytes); !s.ok()) return s;
    std::string expected = "expected " + std::to_string(expectBytes) + " bytes for " + spec.datatype + " " +
                           shapeString(shape) + ", got ";

    std::optional<ShmRef> ref;
    if (auto s = shmRef(in.parameters(), what, &ref); !s.ok()) return s;
    // The protocol gives each input's data one way only; a second one would
    // be silently ignored, so it is refused.
    std::vector<std::byte> typed;
    bool typedOfType = typedContents(spec.datatype, in.contents(), typed);
    bool hasTyped = typedOfType || in.contents().ByteSizeLong() > 0;
    if (hasTyped && ref) return invalid(what + ": typed contents must not be set with a shared_memory_region");
    if (hasTyped && raw) return invalid(what + ": typed contents must not be set when raw_input_contents is used");
    std::span<const std::byte> data;
    if (ref) {
      if (ref->byteSize && *ref->byteSize != expectBytes)
        return invalid(what + ": shared_memory_byte_size: " + expected + std::to_string(*ref->byteSize));
      ShmView view;
      if (auto s = shm.view(ref->region, ref->offset, expectBytes, &view); !s.ok())
        return grpc::Status(s.error_code(), what + ": " + s.error_message());
      data = view.bytes;
      out->shmInputs.push_back(std::move(view));
    } else if (raw) {
      const std::string& bytes = req.raw_input_contents(rawIndex[static_cast<size_t>(i)]);
      if (bytes.size() != expectBytes) return invalid(what + ": " + expected + std::to_string(bytes.size()));
      data = std::as_bytes(std::span<const char>(bytes.data(), bytes.size()));
    } else {
      if (!hasTyped)
        return invalid(what + ": no data (raw_input_contents, typed contents or a shared_memory_region)");
      if (!typedOfType)
        return invalid(what + ": typed contents are set, but not the field that " + spec.datatype + " takes");
      std::vector<std::byte>& buf = out->owned.emplace_back(std::move(typed));
      if (buf.size() != expectBytes)
        return invalid(what + ": " + expected + std::to_string(buf.size()) + " (" +
                       std::to_string(buf.size() / elementSize(spec.datatype)) + " typed values)");
      data = buf;
    }
    out->inputs.push_back({spec.name, spec.datatype, shape, data});
  }

  const auto& outSpecs = model.loaded->outputs();
  out->outputs.clear();
  std::set<std::string> seen;
  for (const auto& o : req.outputs()) {
    if (std::none_of(outSpecs.begin(), outSpecs.end(), [&](const TensorSpec& s) { return s.name == o.name(); }))
      return invalid("unknown output '" + o.name() + "'; model '" + model.name + "' gives: " + describe(outSpecs));
    if (!seen.insert(o.name()).second) return invalid("output '" + o.name() + "' is requested twice");
    RequestedOutput r{o.name(), std::nullopt, ""};
    std::optional<ShmRef> ref;
    if (auto s = shmRef(o.parameters(), "output '" + o.name() + "'", &ref); !s.ok()) return s;
    if (ref) {
      if (!ref->byteSize) return invalid("output '" + o.name() + "': shared_memory_byte_size is required");
      ShmView view;
      if (auto s = shm.view(ref->region, ref->offset, *ref->byteSize, &view); !s.ok())
        return grpc::Status(s.error_code(), "output '" + o.name() + "': " + s.error_message());
      r.shm = std::move(view);
      r.shmRegion = ref->region;
    }
    out->outputs.push_back(std::move(r));
  }
  if (out->outputs.empty())
    for (const auto& s : outSpecs) out->outputs.push_back({s.name, std::nullopt, ""});
  return grpc::Status::OK;
}

OutputDestinations outputDestinations(const ServedModel& model, const PreparedInfer& prepared) {
  const auto& specs = model.loaded->outputs();
  OutputDestinations out(specs.size());
  bool any = false;
  for (size_t i = 0; i < specs.size(); ++i)
    for (const auto& want : prepared.outputs)
      if (want.name == specs[i].name && want.shm && want.shm->pinned) {
        out[i] = want.shm->bytes;
        any = true;
      }
  if (!any) out.clear();
  return out;
}

grpc::Status buildInferResponse(const inference::ModelInferRequest& req, const ServedModel& model,
                                const PreparedInfer& prepared, std::vector<OutputTensor>& outputs,
                                inference::ModelInferResponse* resp) {
  resp->set_model_name(model.name);
  resp->set_model_version(std::to_string(model.version));
  resp->set_id(req.id());
  for (const auto& want : prepared.outputs) {
    auto it = std::find_if(outputs.begin(), outputs.end(), [&](const OutputTensor& o) { return o.name == want.name; });
    if (it == outputs.end()) return grpc::Status(grpc::StatusCode::INTERNAL, "the backend gave no output '" + want.name + "'");
    auto* t = resp->add_outputs();
    t->set_name(it->name);
    t->set_datatype(it->datatype);
    for (int64_t d : it->shape) t->add_shape(d);
    std::string* raw = resp->add_raw_output_contents();  // one per output keeps the indexes aligned
    if (it->inDestination && !want.shm)
      return grpc::Status(grpc::StatusCode::INTERNAL, "output '" + want.name + "' was written to no requested range");
    if (want.shm) {
      // In place: the engine wrote it there (outputDestinations), within the range.
      const uint64_t bytes = it->inDestination ? byteCount(it->datatype, it->shape).value_or(UINT64_MAX)
                                               : it->data.size();
      if (bytes > want.shm->bytes.size())
        return invalid("output '" + want.name + "': needs " + std::to_string(bytes) +
                       " bytes; its shared memory range has " + std::to_string(want.shm->bytes.size()));
      if (!it->inDestination) {
        std::memcpy(want.shm->bytes.data(), it->data.data(), it->data.size());
      } else if (bytes > 0) {
        // The device's write cannot fault; this read does when the pod cut
        // its file short meanwhile, so that the truncation check sees it.
        [[maybe_unused]] std::byte last = *static_cast<volatile const std::byte*>(&want.shm->bytes[bytes - 1]);
      }
      (*t->mutable_parameters())["shared_memory_region"].set_string_param(want.shmRegion);
      (*t->mutable_parameters())["shared_memory_byte_size"].set_int64_param(static_cast<int64_t>(bytes));
    } else {
      raw->assign(reinterpret_cast<const char*>(it->data.data()), it->data.size());
    }
  }
  return grpc::Status::OK;
}

}  // namespace kubeaccel::agent
