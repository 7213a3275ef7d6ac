#pragma once
// C++ on the backend side of the C ABI (agent/backend/kubeaccel_backend.h).
// A backend implements Model and Runner and a load function; makeBackendTable
// turns them into the C function table, catching every exception at the
// boundary and copying its message into the caller's buffer.

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "backend/kubeaccel_backend.h"
#include "backend/tensor.hpp"

namespace kubeaccel::backend {

using agent::TensorSpec;

// An error with the status the C call returns; any other exception is KAB_INTERNAL.
struct Error : std::runtime_error {
  Error(kab_status s, const std::string& what) : std::runtime_error(what), status(s) {}
  kab_status status;
};

// One worker's execution context. run() is never called concurrently on one runner.
class Runner {
 public:
  virtual ~Runner() = default;
  // Fills every output (setOutput) in the model's output order. Throws on failure.
  virtual void run(std::span<const kab_input> inputs, std::span<kab_output> outputs) = 0;
  // kab_backend.run_into: as run, writing an output into its destination
  // (one per output, pinned host memory) where the engine can and it fits.
  // By default the destinations are not used.
  virtual void runInto(std::span<const kab_input> inputs, std::span<kab_output> outputs,
                       std::span<const kab_destination> destinations) {
    (void)destinations;
    run(inputs, outputs);
  }
};

class Model {
 public:
  virtual ~Model() = default;
  virtual const std::vector<TensorSpec>& inputs() const = 0;
  virtual const std::vector<TensorSpec>& outputs() const = 0;
  virtual kab_limits limits() const { return {1, INT32_MAX, INT32_MAX}; }
  virtual std::string info() const { return ""; }
  // Called concurrently with runs of other runners. Throws on failure.
  virtual std::unique_ptr<Runner> newRunner() = 0;
};

struct Definition {
  const char* name;               // "torch"
  std::string platform;           // "CPU (libtorch 1.13.0)"
  std::vector<std::string> files; // {"model.pt", "model.pt2"}
  // Throws Error or std::exception with the reason; called concurrently.
  std::function<std::unique_ptr<Model>(const kab_load_args&)> load;
  // Optional (kab_backend.pin_host_memory / unpin_host_memory): pins host
  // pages for the engine's device DMA; throws Error with the reason.
  std::function<void(void* ptr, size_t bytes)> pinHostMemory;
  std::function<void(void* ptr)> unpinHostMemory;
};

// The C table for `def`, built once (the first call's `def` wins) and kept
// for the life of the process.
const kab_backend* makeBackendTable(Definition def);

// Sets `out` to a tensor whose bytes live in `owner` (moved to the heap and
// deleted by the release callback): no copy of the data.
template <class Owner>
void setOutput(kab_output& out, const std::string& datatype, std::span<const int64_t> shape, Owner owner,
               const void* data, size_t bytes) {
  if (shape.size() > KAB_MAX_RANK) throw Error(KAB_INTERNAL, "output rank " + std::to_string(shape.size()) + " is over 16");
  if (datatype.size() >= sizeof out.datatype) throw Error(KAB_INTERNAL, "datatype name too long: " + datatype);
  auto* held = new Owner(std::move(owner));
  out = kab_output{};
  datatype.copy(out.datatype, datatype.size());
  for (size_t i = 0; i < shape.size(); ++i) out.shape[i] = shape[i];
  out.rank = shape.size();
  out.data = data;
  out.bytes = bytes;
  out.release = [](void* p) { delete static_cast<Owner*>(p); };
  out.release_ctx = held;
}

// Releases outputs already set (a run that fails part-way releases its own).
void releaseOutputs(std::span<kab_output> outputs);

// The first of `files` present in `versionDir`, as a full path; throws
// Error(KAB_INVALID) naming the folder when there is none.
std::string pickModelFile(const std::string& versionDir, const std::vector<std::string>& files);

}  // namespace kubeaccel::backend

// Defines the exported entry point of a backend library over a Definition-making expression.
#define KUBEACCEL_DEFINE_BACKEND(definitionExpr)                                                       \
  extern "C" __attribute__((visibility("default"))) const kab_backend* kubeaccel_backend_get(uint32_t) { \
    try {                                                                                              \
      return kubeaccel::backend::makeBackendTable(definitionExpr);                                      \
    } catch (...) {                                                                                    \
      return nullptr;                                                                                  \
    }                                                                                                  \
  }
