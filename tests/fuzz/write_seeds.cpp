// Writes the fuzzers' seed corpus: write_seeds DIR writes DIR/infer_request/*
// and DIR/shm_registry/*. The corpus is committed (tests/fuzz/corpus); run
// this again after changing the seeds below.
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <google/protobuf/unknown_field_set.h>

#include "inference/grpc_service.pb.h"

namespace {

namespace fs = std::filesystem;

// Model numbers, as fuzz_world.hpp orders them.
enum Model : char { kRelu = 0, kPair = 1, kFixed = 2, kInts = 3 };

inference::ModelInferRequest::InferInputTensor* addInput(inference::ModelInferRequest& r, const std::string& name,
                                                         const std::string& dt, std::vector<int64_t> shape) {
  auto* in = r.add_inputs();
  in->set_name(name);
  in->set_datatype(dt);
  for (auto d : shape) in->add_shape(d);
  return in;
}

void shm(google::protobuf::Map<std::string, inference::InferParameter>* p, const std::string& region, int64_t offset,
         int64_t size) {
  (*p)["shared_memory_region"].set_string_param(region);
  (*p)["shared_memory_offset"].set_int64_param(offset);
  if (size >= 0) (*p)["shared_memory_byte_size"].set_int64_param(size);
}

void write(const fs::path& dir, const std::string& name, Model m, const inference::ModelInferRequest& r) {
  std::ofstream(dir / name, std::ios::binary) << std::string(1, m) << r.SerializeAsString();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  fs::path infer = fs::path(argv[1]) / "infer_request", shmDir = fs::path(argv[1]) / "shm_registry";
  fs::create_directories(infer);
  fs::create_directories(shmDir);
  const std::string f4(16, '\x01');
  {
    inference::ModelInferRequest r;
    addInput(r, "x", "FP32", {1, 4});
    r.add_raw_input_contents(f4);
    write(infer, "relu-valid", kRelu, r);
  }
  {  // issue 9, section 1: 3 x 1537228672809129302 x 4 wraps to 8
    inference::ModelInferRequest r;
    addInput(r, "x", "FP32", {3, 1537228672809129302});
    r.add_raw_input_contents(std::string(8, '\0'));
    write(infer, "relu-wrapping-size", kRelu, r);
  }
  {  // section 11: [1, 4611686018427387905] with 4 bytes came back OK
    inference::ModelInferRequest r;
    addInput(r, "x", "FP32", {1, 4611686018427387905});
    r.add_raw_input_contents(std::string(4, '\0'));
    write(infer, "relu-wrapping-size-2", kRelu, r);
  }
  {
    inference::ModelInferRequest r;
    addInput(r, "x", "FP32", {2, 4});
    for (int i = 0; i < 8; ++i) r.mutable_inputs(0)->mutable_contents()->add_fp32_contents(0.5f * i);
    write(infer, "relu-typed", kRelu, r);
  }
  {  // section 8: raw and typed on one input
    inference::ModelInferRequest r;
    addInput(r, "x", "FP32", {1, 4})->mutable_contents()->add_fp32_contents(1.f);
    r.add_raw_input_contents(f4);
    write(infer, "relu-raw-and-typed", kRelu, r);
  }
  {
    inference::ModelInferRequest r;
    addInput(r, "x", "FP32", {1, 4});
    r.add_raw_input_contents(f4);
    shm(r.add_outputs()->mutable_parameters(), "p", 0, 16);
    r.mutable_outputs(0)->set_name("y");
    write(infer, "relu-shm-output", kRelu, r);
  }
  {  // section 9: a stock client's layout: a in shared memory, b raw
    inference::ModelInferRequest r;
    shm(addInput(r, "a", "FP32", {2, 4})->mutable_parameters(), "s", 0, 32);
    addInput(r, "b", "FP32", {2, 4});
    r.add_raw_input_contents(std::string(32, '\x02'));
    write(infer, "pair-stock-shm-layout", kPair, r);
  }
  {
    inference::ModelInferRequest r;
    addInput(r, "a", "FP32", {1, 4});
    addInput(r, "b", "FP32", {1, 4});
    r.add_raw_input_contents(f4);
    r.add_raw_input_contents(f4);
    write(infer, "pair-raw", kPair, r);
  }
  {
    inference::ModelInferRequest r;
    shm(addInput(r, "x", "FP32", {2, 3})->mutable_parameters(), "p", 4000, 24);
    write(infer, "fixed-shm", kFixed, r);
  }
  {
    inference::ModelInferRequest r;
    auto* i = addInput(r, "i", "INT32", {1, 2});
    i->mutable_contents()->add_int_contents(7);
    i->mutable_contents()->add_int_contents(-7);
    auto* l = addInput(r, "l", "INT64", {1, 3, 2});
    for (int k = 0; k < 6; ++k) l->mutable_contents()->add_int64_contents(k);
    write(infer, "ints-typed", kInts, r);
  }
  {  // fields the agent does not know (a newer client's) decode and are ignored
    inference::ModelInferRequest r;
    auto* in = addInput(r, "x", "FP32", {1, 4});
    r.add_raw_input_contents(f4);
    r.GetReflection()->MutableUnknownFields(&r)->AddLengthDelimited(999, "abc");
    in->GetReflection()->MutableUnknownFields(in)->AddVarint(1000, 1);
    write(infer, "relu-unknown-fields", kRelu, r);
  }
  // The shared-memory script fuzzer reads its input from both ends; random
  // bytes are as good a start as any.
  std::mt19937 rng(20240901);
  for (int k = 0; k < 8; ++k) {
    std::string bytes(16 + 24 * k, '\0');
    for (auto& c : bytes) c = static_cast<char>(rng());
    std::ofstream(shmDir / ("random-" + std::to_string(k)), std::ios::binary) << bytes;
  }
  return 0;
}
