#include "repository/model_config.hpp"

#include <nlohmann/json.hpp>

#include <climits>
#include <set>
#include <stdexcept>

namespace kubeaccel::agent {
namespace {

using json = nlohmann::json;

[[noreturn]] void fail(const std::string& origin, const std::string& key, const std::string& why) {
  throw std::runtime_error(origin + ": " + key + ": " + why);
}

int intIn(const json& j, const std::string& origin, const std::string& key, int lo, int hi) {
  if (!j.is_number_integer()) fail(origin, key, "expected an integer, got " + j.dump());
  long v = j.get<long>();
  if (v < lo || v > hi)
    fail(origin, key, "expected an integer from " + std::to_string(lo) + " to " + std::to_string(hi) + ", got " +
                          std::to_string(v));
  return static_cast<int>(v);
}

std::vector<std::string> names(const json& j, const std::string& origin, const std::string& key) {
  if (!j.is_array()) fail(origin, key, "expected a list of tensor names");
  std::vector<std::string> out;
  for (const auto& n : j) {
    if (!n.is_string() || n.get<std::string>().empty()) fail(origin, key, "expected non-empty strings");
    out.push_back(n.get<std::string>());
  }
  return out;
}

std::vector<TensorSpec> tensors(const json& j, const std::string& origin, const std::string& key) {
  if (!j.is_array()) fail(origin, key, "expected a list of {\"name\", \"datatype\", \"dims\"} objects");
  std::vector<TensorSpec> out;
  std::set<std::string> seen;
  for (size_t i = 0; i < j.size(); ++i) {
    const json& t = j[i];
    std::string at = key + "[" + std::to_string(i) + "]";
    if (!t.is_object()) fail(origin, at, "expected an object with name, datatype and dims");
    for (const auto& [k, _] : t.items())
      if (k != "name" && k != "datatype" && k != "dims") fail(origin, at + "." + k, "unknown key");
    TensorSpec s;
    if (!t.contains("name") || !t["name"].is_string() || t["name"].get<std::string>().empty())
      fail(origin, at + ".name", "expected a non-empty string");
    s.name = t["name"].get<std::string>();
    if (!seen.insert(s.name).second) fail(origin, at + ".name", "'" + s.name + "' is declared twice");
    if (!t.contains("datatype") || !t["datatype"].is_string() || !isKnownDatatype(t["datatype"].get<std::string>()) ||
        elementSize(t["datatype"].get<std::string>()) == 0)
      fail(origin, at + ".datatype", "expected a fixed-size KServe datatype (FP32, FP16, INT64, ...), got " +
                                         (t.contains("datatype") ? t["datatype"].dump() : std::string("nothing")));
    s.datatype = t["datatype"].get<std::string>();
    if (!t.contains("dims") || !t["dims"].is_array() || t["dims"].size() > 16)
      fail(origin, at + ".dims", "expected a list of at most 16 integers (-1: any size)");
    for (const auto& d : t["dims"]) {
      if (!d.is_number_integer() || d.get<long long>() < -1 || d.get<long long>() > INT32_MAX)
        fail(origin, at + ".dims", "expected integers from -1 to 2147483647, got " + d.dump());
      s.shape.push_back(d.get<int64_t>());
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::string oneOf(const json& j, const std::string& origin, const std::string& key, const std::set<std::string>& ok) {
  std::string list;
  for (const auto& o : ok) list += (list.empty() ? "" : ", ") + o;
  if (!j.is_string() || !ok.count(j.get<std::string>())) fail(origin, key, "expected one of " + list + ", got " + j.dump());
  return j.get<std::string>();
}

}  // namespace

ModelConfig parseModelConfig(const std::string& text, const std::string& origin) {
  // An empty (or whitespace-only) file means the defaults, as documented.
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) return {};
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    std::string what = e.what();
    auto pos = what.find("] ");
    throw std::runtime_error(origin + ": invalid JSON: " + (pos == std::string::npos ? what : what.substr(pos + 2)));
  }
  if (!j.is_object()) throw std::runtime_error(origin + ": expected an object");
  static const std::set<std::string> known = {"max_batch_size", "dynamic_batching", "input_names", "output_names",
                                              "instance_count", "inputs", "outputs", "precision", "threads",
                                              "device", "cuda_graphs"};
  for (const auto& [k, _] : j.items())
    if (!known.count(k)) fail(origin, k, "unknown key");
  ModelConfig c;
  if (j.contains("max_batch_size")) c.maxBatchSize = intIn(j["max_batch_size"], origin, "max_batch_size", 0, 1024);
  if (j.contains("instance_count")) c.instanceCount = intIn(j["instance_count"], origin, "instance_count", 1, 16);
  if (j.contains("input_names")) c.inputNames = names(j["input_names"], origin, "input_names");
  if (j.contains("output_names")) c.outputNames = names(j["output_names"], origin, "output_names");
  if (j.contains("inputs")) c.inputs = tensors(j["inputs"], origin, "inputs");
  if (j.contains("outputs")) c.outputs = tensors(j["outputs"], origin, "outputs");
  if (j.contains("precision")) c.precision = oneOf(j["precision"], origin, "precision", {"fp32", "fp16", "bf16"});
  if (j.contains("threads")) c.threads = intIn(j["threads"], origin, "threads", 0, 1024);
  if (j.contains("device")) c.device = oneOf(j["device"], origin, "device", {"cpu", "cuda"});
  // On by default on CUDA: at small batches they cut ResNet-50's latency by
  // two thirds on the H200 (bench/README.md "GPU").
  c.cudaGraphs = c.device == "cuda";
  if (j.contains("cuda_graphs")) {
    if (!j["cuda_graphs"].is_boolean()) fail(origin, "cuda_graphs", "expected true or false");
    c.cudaGraphs = j["cuda_graphs"].get<bool>();
    if (c.cudaGraphs && c.device != "cuda") fail(origin, "cuda_graphs", "needs \"device\": \"cuda\"");
  }
  if (j.contains("dynamic_batching")) {
    const json& d = j["dynamic_batching"];
    if (!d.is_object()) fail(origin, "dynamic_batching", "expected an object");
    for (const auto& [k, _] : d.items())
      if (k != "max_queue_delay_us" && k != "preferred_batch_sizes") fail(origin, "dynamic_batching." + k, "unknown key");
    if (c.maxBatchSize == 0) fail(origin, "dynamic_batching", "needs max_batch_size > 0");
    c.dynamicBatching = true;
    if (d.contains("max_queue_delay_us"))
      c.maxQueueDelay = std::chrono::microseconds(
          intIn(d["max_queue_delay_us"], origin, "dynamic_batching.max_queue_delay_us", 0, 1000000));
    if (d.contains("preferred_batch_sizes")) {
      const json& p = d["preferred_batch_sizes"];
      if (!p.is_array()) fail(origin, "dynamic_batching.preferred_batch_sizes", "expected a list of integers");
      for (const auto& v : p)
        c.preferredBatchSizes.push_back(
            intIn(v, origin, "dynamic_batching.preferred_batch_sizes", 1, c.maxBatchSize));
    }
  }
  return c;
}

}  // namespace kubeaccel::agent
