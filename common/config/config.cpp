#include "config/config.hpp"

namespace kubeaccel {

const DeviceClass* Config::findClass(const std::string& name) const {
  for (const auto& c : classes)
    if (c.name == name) return &c;
  return nullptr;
}

const char* toString(Mode m) { return m == Mode::Agent ? "agent" : "device"; }

}  // namespace kubeaccel
