#pragma once
// GetPreferredAllocation's policy: keep must_include, then keep to one NUMA
// node, then use slots of as few physical devices as possible (or, for a class
// set to spread, of as many). Pure: unit tested on its own.

#include <stdexcept>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace kubeaccel {

struct AllocationCandidate {
  std::string id;
  std::string physicalId;
  int numaNode = -1;
};

// Returns exactly `size` IDs drawn from `available`, must_include first.
// Throws std::invalid_argument when that cannot be done.
std::vector<std::string> preferredAllocation(const std::vector<AllocationCandidate>& available,
                                             const std::vector<std::string>& mustInclude, int size,
                                             SlotPolicy policy);

}  // namespace kubeaccel
