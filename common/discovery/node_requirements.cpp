#include "discovery/node_requirements.hpp"

#include <fnmatch.h>

#include <algorithm>

namespace kubeaccel {

std::string missingNodes(const std::vector<std::string>& ownNodes, const DeviceClass& cls) {
  if (ownNodes.empty()) return "no device node";
  for (const auto& pattern : cls.requiredNodes) {
    bool found = std::any_of(ownNodes.begin(), ownNodes.end(), [&](const std::string& node) {
      return ::fnmatch(pattern.c_str(), node.c_str(), FNM_PATHNAME) == 0;
    });
    if (!found) return "no device node matching " + pattern;
  }
  return "";
}

}  // namespace kubeaccel
