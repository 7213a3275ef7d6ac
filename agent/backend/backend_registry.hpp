#pragma once
#include <memory>
#include <string>

#include "backend/backend.hpp"

namespace kubeaccel::agent {

// The backend a class names, or null with `reason` saying why it cannot run
// here (e.g. a backend that is not built into this agent). A device is never
// silently served by another engine.
std::unique_ptr<Backend> makeBackend(const std::string& name, std::string* reason);

}  // namespace kubeaccel::agent
