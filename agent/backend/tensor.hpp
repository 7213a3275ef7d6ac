#pragma once
// Tensors as the front end and the backends exchange them: KServe datatype
// names, shapes with -1 as a wildcard, bytes in row-major order.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace kubeaccel::agent {

struct TensorSpec {
  std::string name;
  std::string datatype;        // "FP32", "INT64", ... (KServe names)
  std::vector<int64_t> shape;  // -1: any size
};

// An input as a request carries it: the bytes belong to the request (or a
// shared-memory region) and outlive the inference.
struct InputTensor {
  std::string name;
  std::string datatype;
  std::vector<int64_t> shape;
  std::span<const std::byte> data;
};

struct OutputTensor {
  std::string name;
  std::string datatype;
  std::vector<int64_t> shape;
  std::vector<std::byte> data;  // empty when inDestination
  // The engine wrote it straight into the destination the run was given
  // (ModelRunner::run), as byteCount(datatype, shape) bytes.
  bool inDestination = false;
};

// Where a run may write an output itself: one span per model output, an
// empty span for none; empty: no destinations at all.
using OutputDestinations = std::vector<std::span<std::byte>>;

// Bytes per element of a fixed-size KServe datatype; 0 for BYTES or unknown.
size_t elementSize(const std::string& datatype);
bool isKnownDatatype(const std::string& datatype);
// Elements of `shape`: -1 if any dim is negative or the product does not fit int64.
int64_t elementCount(const std::vector<int64_t>& shape);
// Bytes of a tensor of `datatype` and `shape`, overflow-checked: nullopt when a
// dim is negative, the datatype has no fixed size (BYTES, unknown), or the
// element count or the byte count does not fit int64. Every size taken from a
// client goes through here, never through an unchecked multiplication.
std::optional<uint64_t> byteCount(const std::string& datatype, const std::vector<int64_t>& shape);
std::string shapeString(const std::vector<int64_t>& shape);  // "[1,3,224,224]"

}  // namespace kubeaccel::agent
