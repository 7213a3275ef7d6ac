#pragma once
// What the request-check fuzzer runs against: models of the shapes that matter
// (a free non-batch dim, two inputs, a fixed unbatched shape, a non-FP32
// datatype) without an engine, and a slot directory with two registered
// shared-memory regions. Built once per process.
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "repository/model_repository.hpp"
#include "shm/shm_registry.hpp"

namespace kubeaccel::fuzz {

using agent::TensorSpec;

// Specs only: the fuzzers check requests, they run nothing.
class SpecOnlyModel final : public agent::LoadedModel {
 public:
  SpecOnlyModel(std::vector<TensorSpec> in, std::vector<TensorSpec> out) : in_(std::move(in)), out_(std::move(out)) {}
  const std::vector<TensorSpec>& inputs() const override { return in_; }
  const std::vector<TensorSpec>& outputs() const override { return out_; }
  std::unique_ptr<agent::ModelRunner> newRunner() const override { return nullptr; }

 private:
  std::vector<TensorSpec> in_, out_;
};

inline agent::ServedModel servedModel(const std::string& name, int maxBatch, std::vector<TensorSpec> in,
                                      std::vector<TensorSpec> out) {
  agent::ServedModel m;
  m.name = name;
  m.version = 1;
  m.config.maxBatchSize = maxBatch;
  m.loaded = std::make_shared<SpecOnlyModel>(std::move(in), std::move(out));
  return m;
}

// The model a fuzz input's first byte selects (modulo the count).
inline const std::vector<agent::ServedModel>& models() {
  static const std::vector<agent::ServedModel> m = {
      servedModel("relu", 8, {{"x", "FP32", {-1, -1}}}, {{"y", "FP32", {-1, -1}}}),
      servedModel("pair", 8, {{"a", "FP32", {-1, 4}}, {"b", "FP32", {-1, 4}}},
                  {{"sum", "FP32", {-1, 4}}, {"diff", "FP32", {-1, 4}}}),
      servedModel("fixed", 0, {{"x", "FP32", {2, 3}}}, {{"y", "FP32", {6}}}),
      servedModel("ints", 4, {{"i", "INT32", {-1, 2}}, {"l", "INT64", {-1, 3, -1}}}, {{"o", "INT64", {-1, 3}}}),
  };
  return m;
}

// A slot directory holding "small" (64 bytes) and "page" (4100 bytes),
// registered as regions "s" (all of small) and "p" (page from offset 4).
struct SlotWorld {
  std::string dir;
  std::unique_ptr<agent::ShmRegistry> shm;
  SlotWorld() {
    char tmpl[] = "/tmp/kubeaccel-fuzz-XXXXXX";
    if (!::mkdtemp(tmpl)) std::abort();
    dir = tmpl;
    std::ofstream(dir + "/small", std::ios::binary) << std::string(64, '\x11');
    std::ofstream(dir + "/page", std::ios::binary) << std::string(4100, '\x22');
    shm = std::make_unique<agent::ShmRegistry>(dir);
    if (!shm->registerRegion("s", "small", 0, 64).ok() || !shm->registerRegion("p", "page", 4, 4096).ok()) std::abort();
  }
};

inline SlotWorld& slotWorld() {
  static SlotWorld w;
  return w;
}

}  // namespace kubeaccel::fuzz
