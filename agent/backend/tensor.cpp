#include "backend/tensor.hpp"

#include <map>

namespace kubeaccel::agent {

namespace {
const std::map<std::string, size_t>& sizes() {
  static const std::map<std::string, size_t> m = {
      {"BOOL", 1},  {"UINT8", 1}, {"UINT16", 2}, {"UINT32", 4}, {"UINT64", 8}, {"INT8", 1},  {"INT16", 2},
      {"INT32", 4}, {"INT64", 8}, {"FP16", 2},   {"BF16", 2},   {"FP32", 4},   {"FP64", 8},  {"BYTES", 0}};
  return m;
}
}  // namespace

size_t elementSize(const std::string& datatype) {
  auto it = sizes().find(datatype);
  return it == sizes().end() ? 0 : it->second;
}

bool isKnownDatatype(const std::string& datatype) { return sizes().count(datatype) > 0; }

int64_t elementCount(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return -1;
    if (d != 0 && n > INT64_MAX / d) return -1;
    n *= d;
  }
  return n;
}

std::optional<uint64_t> byteCount(const std::string& datatype, const std::vector<int64_t>& shape) {
  size_t size = elementSize(datatype);
  int64_t n = elementCount(shape);
  if (size == 0 || n < 0) return std::nullopt;
  int64_t bytes = 0;
  if (__builtin_mul_overflow(n, static_cast<int64_t>(size), &bytes)) return std::nullopt;
  return static_cast<uint64_t>(bytes);
}

std::string shapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace kubeaccel::agent
