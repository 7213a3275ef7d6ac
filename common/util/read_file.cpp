#include "util/read_file.hpp"

#include <fstream>
#include <iterator>

namespace kubeaccel {

std::optional<std::string> readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace kubeaccel
