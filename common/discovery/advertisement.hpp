#pragma once
// How discovered devices are advertised: one entry per device in device mode,
// one per slot in agent mode. Shared by the plugin and `kubeaccel devices`.

#include <string>
#include <vector>

#include "config/config.hpp"
#include "discovery/inventory.hpp"

namespace kubeaccel {

struct AdvertisedDevice {
  std::string id;          // what the kubelet sees: device ID, or "<device-id>-s<k>"
  std::string physicalId;  // the device ID shared by a device's slots
  int slot = -1;           // -1 in device mode
  bool healthy = true;
  int numaNode = -1;
  Device device;

  bool operator==(const AdvertisedDevice&) const = default;
};

// The advertised devices of one class, in a stable order.
std::vector<AdvertisedDevice> advertise(const DeviceClass& cls, const std::vector<TrackedDevice>& devices);

// Slot directory name of slot k: "s0", "s1", ...
std::string slotDirName(int slot);

// The agent's name for an agent-mode device, which is also its model
// repository's name (KServe v2 repository_name): "<class>/<device-id>".
std::string deviceKey(const std::string& className, const std::string& deviceId);

}  // namespace kubeaccel
