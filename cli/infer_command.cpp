#include "infer_command.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "inference_client.hpp"
#include "util/args.hpp"
#include "util/read_file.hpp"

namespace kubeaccel {
namespace {

constexpr const char* kHelp = R"(Usage: kubeaccel infer --socket unix://PATH --model NAME [--input FILE | --random]
                       [--batch N] [--shm] [--json] [--timeout SECONDS]

Runs one inference through a slot socket (KServe v2 over gRPC) and prints the
outputs and the round-trip latency. In a pod, --socket is
$KUBEACCEL_INFERENCE_SOCKET (unix:///run/kubeaccel/inference.sock).

  --socket unix://PATH  the slot's inference socket (default: $KUBEACCEL_INFERENCE_SOCKET)
  --model NAME          the model to run
  --input FILE          the inputs: a JSON file {"inputs": [{"name", "shape", "data"}]}
                        (FP32 data, flat), or raw little-endian bytes for a
                        single-input model (shape from metadata, batch 1)
  --random              random FP32 inputs shaped from the model's metadata (default)
  --batch N             batch size for --random on a batched model (default 1)
  --shm                 pass tensors through a shared-memory file in the slot
                        directory instead of the gRPC message
  --json                print {"model", "outputs": [{"name", "datatype", "shape", "data"}], "latency_ms"}
  --timeout SECONDS     give up after this long (default 10)
)";

int intFlag(const Args& args, const std::string& name, int fallback, int max) {
  auto v = args.get(name);
  if (!v) return fallback;
  int n = 0;
  auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (ec != std::errc() || p != v->data() + v->size() || n < 1 || n > max)
    throw UsageError("--" + name + ": expected an integer from 1 to " + std::to_string(max) + ", got '" + *v + "'");
  return n;
}

std::string readAll(const std::string& path) {
  auto text = readFile(path);
  if (!text) throw UsageError("--input: cannot read " + path + ": " + std::strerror(errno));
  return std::move(*text);
}

std::vector<ClientTensor> inputsFromFile(const std::string& path, const inference::ModelMetadataResponse& meta) {
  std::string text = readAll(path);
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) {
    // Raw bytes for a single-input model.
    if (meta.inputs_size() != 1)
      throw UsageError("--input: raw bytes fit single-input models only; '" + meta.name() + "' takes " +
                       std::to_string(meta.inputs_size()) + " inputs (use the JSON form)");
    auto t = InferenceClient::randomInputs(meta, 1)[0];
    if (text.size() != t.bytes.size())
      throw UsageError("--input: expected " + std::to_string(t.bytes.size()) + " bytes for input '" + t.name +
                       "', got " + std::to_string(text.size()));
    t.bytes = text;
    return {t};
  }
  std::vector<ClientTensor> out;
  if (!j.contains("inputs") || !j["inputs"].is_array())
    throw UsageError("--input: expected {\"inputs\": [{\"name\", \"shape\", \"data\"}]}");
  for (size_t i = 0; i < j["inputs"].size(); ++i) {
    const auto& e = j["inputs"][i];
    std::string where = "--input: inputs[" + std::to_string(i) + "]";
    if (!e.contains("name") || !e["name"].is_string()) throw UsageError(where + ".name: expected a string");
    if (!e.contains("shape") || !e["shape"].is_array()) throw UsageError(where + ".shape: expected a list");
    if (!e.contains("data") || !e["data"].is_array()) throw UsageError(where + ".data: expected a list of numbers");
    ClientTensor t{e["name"], e.value("datatype", "FP32"), {}, {}};
    for (const auto& d : e["shape"]) {
      if (!d.is_number_integer()) throw UsageError(where + ".shape: expected integers");
      t.shape.push_back(d.get<int64_t>());
    }
    if (t.datatype != "FP32") throw UsageError(where + ".datatype: only FP32 is read from JSON");
    for (const auto& v : e["data"]) {
      if (!v.is_number()) throw UsageError(where + ".data: expected numbers");
      float f = v.get<float>();
      t.bytes.append(reinterpret_cast<const char*>(&f), sizeof f);
    }
    out.push_back(std::move(t));
  }
  return out;
}

nlohmann::json values(const ClientTensor& t) {
  nlohmann::json data = nlohmann::json::array();
  auto each = [&](auto zero) {
    using T = decltype(zero);
    for (size_t i = 0; i + sizeof(T) <= t.bytes.size(); i += sizeof(T)) {
      T v;
      std::memcpy(&v, t.bytes.data() + i, sizeof v);
      data.push_back(v);
    }
  };
  if (t.datatype == "FP32") each(float{});
  else if (t.datatype == "FP64") each(double{});
  else if (t.datatype == "INT64") each(int64_t{});
  else if (t.datatype == "INT32") each(int32_t{});
  else if (t.datatype == "UINT8" || t.datatype == "BOOL") each(uint8_t{});
  return data;
}

std::string shapeText(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

void printHuman(const std::string& model, const std::vector<ClientTensor>& outputs, double ms) {
  std::cout << "model " << model << ": " << std::fixed << std::setprecision(3) << ms << " ms\n";
  for (const auto& t : outputs) {
    nlohmann::json v = values(t);
    std::cout << "  " << t.name << " " << t.datatype << " " << shapeText(t.shape) << ":";
    // A [N, K] score tensor: the top 5 of each row (each batch item).
    size_t rows = t.shape.size() == 2 && t.shape[0] > 0 ? static_cast<size_t>(t.shape[0]) : 1;
    size_t cols = rows > 0 ? v.size() / rows : 0;
    if (t.datatype == "FP32" && cols > 10) {
      for (size_t r = 0; r < rows; ++r) {
        std::vector<std::pair<float, size_t>> top;
        for (size_t i = 0; i < cols; ++i) top.push_back({v[r * cols + i].get<float>(), i});
        std::partial_sort(top.begin(), top.begin() + 5, top.end(), std::greater<>());
        std::cout << (rows > 1 ? "\n    [" + std::to_string(r) + "]" : std::string()) << " top-5";
        for (int i = 0; i < 5; ++i) std::cout << " " << top[i].second << "=" << std::setprecision(5) << top[i].first;
      }
    } else {
      for (const auto& x : v) std::cout << " " << x;
    }
    std::cout << "\n";
  }
}

}  // namespace

int inferCommand(int argc, char** argv) {
  Args args(argc, argv, 2, {"socket", "model", "input", "batch", "timeout"}, {"random", "shm", "json", "help"});
  if (args.has("help")) {
    std::cout << kHelp;
    return kExitOk;
  }
  if (!args.positional().empty()) throw UsageError("infer: unexpected argument '" + args.positional()[0] + "'");
  std::string socket = args.get("socket", "");
  if (socket.empty())
    if (const char* env = std::getenv("KUBEACCEL_INFERENCE_SOCKET")) socket = env;
  if (socket.empty()) throw UsageError("infer: --socket unix://PATH is required (or $KUBEACCEL_INFERENCE_SOCKET)");
  if (!args.has("model")) throw UsageError("infer: --model NAME is required");
  if (args.has("input") && args.has("random")) throw UsageError("infer: --input and --random exclude each other");
  std::string model = *args.get("model");
  int batch = intFlag(args, "batch", 1, 4096);
  int timeout = intFlag(args, "timeout", 10, 3600);

  InferenceClient client(socket, std::chrono::seconds(timeout));
  inference::ModelMetadataResponse meta;
  if (grpc::Status s = client.metadata(model, &meta); !s.ok()) {
    std::cerr << "kubeaccel: infer: " << model << ": " << s.error_message() << "\n";
    return kExitFailure;
  }
  auto inputs = args.has("input") ? inputsFromFile(*args.get("input"), meta) : InferenceClient::randomInputs(meta, batch);
  std::vector<ClientTensor> outputs;
  auto t0 = std::chrono::steady_clock::now();
  grpc::Status s = args.has("shm") ? client.inferShm(model, meta, inputs, &outputs) : client.infer(model, inputs, &outputs);
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (!s.ok()) {
    std::cerr << "kubeaccel: infer: " << model << ": " << s.error_message() << "\n";
    return kExitFailure;
  }
  if (args.has("json")) {
    nlohmann::json out = {{"model", model}, {"outputs", nlohmann::json::array()}, {"latency_ms", ms}};
    for (const auto& t : outputs)
      out["outputs"].push_back({{"name", t.name}, {"datatype", t.datatype}, {"shape", t.shape}, {"data", values(t)}});
    std::cout << out.dump() << "\n";
  } else {
    printHuman(model, outputs, ms);
  }
  return kExitOk;
}

}  // namespace kubeaccel
