#pragma once
// The CDI spec of a resource (https://github.com/cncf-tags/container-device-interface, SPEC.md):
// for device mode one CDI device per advertised device, so a CDI-aware runtime can inject the
// nodes from `cdi_devices` names; agent mode is slot_cdi_spec.hpp.

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "discovery/advertisement.hpp"

namespace kubeaccel {

inline constexpr const char* kCdiVersion = "0.6.0";

// "kubeaccel.io/coral-pcie=0000-03-00.0"
std::string cdiDeviceName(const std::string& kind, const std::string& id);

// Device mode: every device that has its nodes, each with them (rw) and KUBEACCEL_CDI_DEVICE.
nlohmann::json cdiSpec(const std::string& kind, const std::vector<AdvertisedDevice>& devices);

// <dir>/kubeaccel.io-<class>.json for kind "kubeaccel.io/<class>".
std::string cdiSpecPath(const std::string& dir, const std::string& kind);

// Writes `spec` (cdiSpec(), slotCdiSpec()) as <dir>/<kind's file>.json atomically (a temporary
// file renamed over the old one), so a runtime never reads half a spec. Throws std::runtime_error
// naming the file on failure.
void writeCdiSpec(const std::string& dir, const std::string& kind, const nlohmann::json& spec);
void removeCdiSpec(const std::string& dir, const std::string& kind);

}  // namespace kubeaccel
