#pragma once
// Which device nodes a device must have to be usable: a container that asked
// for it must get them (issue 8: never start a pod without its accelerator).

#include <string>
#include <vector>

#include "config/config.hpp"

namespace kubeaccel {

// What `ownNodes` (a device's own nodes, not the class's extra ones) lack
// for class `cls`: "" when nothing; "no device node" when there is none;
// "no device node matching P" for the first pattern of cls.requiredNodes
// (fnmatch, FNM_PATHNAME) that none of them matches.
std::string missingNodes(const std::vector<std::string>& ownNodes, const DeviceClass& cls);

}  // namespace kubeaccel
