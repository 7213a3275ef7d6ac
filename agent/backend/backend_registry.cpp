#include "backend/backend_registry.hpp"

#include "backend/opencv_cpu_backend.hpp"

namespace kubeaccel::agent {

std::unique_ptr<Backend> makeBackend(const std::string& name, std::string* reason) {
  if (name == "opencv-cpu") return std::make_unique<OpenCvCpuBackend>();
  if (name == "openvino")
    *reason = "backend 'openvino' (Intel Movidius) is not built into this agent; set the class's backend to "
              "'opencv-cpu' to run its models on the CPU instead";
  else if (name == "edgetpu")
    *reason = "backend 'edgetpu' (libedgetpu, Google Coral) is not built into this agent; set the class's backend "
              "to 'opencv-cpu' to run its models on the CPU instead";
  else
    *reason = "unknown backend '" + name + "' (built in: opencv-cpu)";
  return nullptr;
}

}  // namespace kubeaccel::agent
