#pragma once
#include <memory>
#include <string>

#include "backend/backend.hpp"

namespace kubeaccel::agent {

// The backend a class names, loaded from `backendDir` (backend_library.hpp),
// or null with `reason` saying why it cannot run here: no library, a library
// that does not load or speaks another ABI version. A device is never
// silently served by another engine. `pciBusId` is the served device's PCI
// address ("" when none); a GPU backend picks its device from it.
std::unique_ptr<Backend> makeBackend(const std::string& name, const std::string& backendDir,
                                     const std::string& pciBusId, std::string* reason);

}  // namespace kubeaccel::agent
