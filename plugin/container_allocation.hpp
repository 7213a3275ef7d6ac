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
// them, and the devices' CDI names when a CDI spec is in place. Agent mode: each slot's directory
// (read-only) and its shm/ (read-write) as plain mounts, env naming the socket, and, when the
// slots' CDI spec is in place, their CDI names, whose mounts replace the plain ones with nosuid,
// nodev and noexec where the runtime applies CDI (slot_cdi_spec.hpp).
v1beta1::ContainerAllocateResponse containerAllocation(const DeviceClass& cls,
                                                       const std::vector<const AdvertisedDevice*>& devices,
                                                       const AllocationPaths& paths);

// Where a container's index-th slot directory appears: /run/kubeaccel, /run/kubeaccel-1, ...
std::string slotMountPath(std::size_t index);

// Host directory of an agent-mode slot.
std::string slotDirectory(const std::string& agentDir, const std::string& className, const AdvertisedDevice& slot);

}  // namespace kubeaccel
