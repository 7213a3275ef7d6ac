#pragma once
// The CDI spec of a device-mode resource: one CDI device per advertised device,
// so a CDI-aware runtime can inject the nodes from `cdi_devices` names.

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "discovery/advertisement.hpp"

namespace kubeaccel {

inline constexpr const char* kCdiVersion = "0.6.0";

// "kubeaccel.io/coral-pcie=0000-03-00.0"
std::string cdiDeviceName(const std::string& kind, const std::string& id);

nlohmann::json cdiSpec(const std::string& kind, const std::vector<AdvertisedDevice>& devices);

// <dir>/kubeaccel.io-<class>.json for kind "kubeaccel.io/<class>".
std::string cdiSpecPath(const std::string& dir, const std::string& kind);

// Writes the spec atomically (a temporary file renamed over the old one), so a
// runtime never reads half a spec. Throws std::runtime_error on failure.
void writeCdiSpec(const std::string& dir, const std::string& kind, const std::vector<AdvertisedDevice>& devices);
void removeCdiSpec(const std::string& dir, const std::string& kind);

}  // namespace kubeaccel
