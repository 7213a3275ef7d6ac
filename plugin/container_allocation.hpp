#pragma once
// What a container gets for the devices the kubelet allocated to it.

#include <string>
#include <vector>

#include "config/config.hpp"
#include "deviceplugin/v1beta1/api.pb.h"
#include "discovery/advertisement.hpp"

namespace kubeaccel {

// Where the first slot's directory appears in an agent-mode container.
inline constexpr const char* kSlotMountPath = "/run/kubeaccel";

class PluginMetrics;

struct AllocationPaths {
  std::string agentDir;  // host: <agent-dir>/<class>/<device-id>/<slot>/
  std::string cdiKind;   // "kubeaccel.io/<class>"; empty: name no CDI devices
  PluginMetrics* metrics = nullptr;  // null: metrics are off
};

// Device mode: every node of every device (rw, same path inside), env naming
// them, and the devices' CDI names when a CDI spec is in place. Agent mode: each slot's directory, and env naming the socket.
v1beta1::ContainerAllocateResponse containerAllocation(const DeviceClass& cls,
                                                       const std::vector<const AdvertisedDevice*>& devices,
                                                       const AllocationPaths& paths);

// Host directory of an agent-mode slot.
std::string slotDirectory(const std::string& agentDir, const std::string& className, const AdvertisedDevice& slot);

}  // namespace kubeaccel
