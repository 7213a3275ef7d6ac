#include "backend/backend_registry.hpp"

#include "backend/abi_backend.hpp"
#include "backend/backend_library.hpp"

namespace kubeaccel::agent {

std::unique_ptr<Backend> makeBackend(const std::string& name, const std::string& backendDir,
                                     const std::string& pciBusId, std::string* reason) {
  std::string why;
  if (const kab_backend* t = openBackendLibrary(backendDir, name, &why)) return std::make_unique<AbiBackend>(t, pciBusId);
  // The planned stick backends get a hint on what to do meanwhile.
  if (name == "openvino")
    *reason = "backend 'openvino' (Intel Movidius) is not built into this agent (" + why +
              "); set the class's backend to 'opencv-cpu' or 'torch' to run its models on the CPU instead";
  else if (name == "edgetpu")
    *reason = "backend 'edgetpu' (libedgetpu, Google Coral) is not built into this agent (" + why +
              "); set the class's backend to 'opencv-cpu' or 'torch' to run its models on the CPU instead";
  else
    *reason = "backend '" + name + "': " + why;
  return nullptr;
}

}  // namespace kubeaccel::agent
