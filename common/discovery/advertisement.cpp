#include "discovery/advertisement.hpp"

namespace kubeaccel {

std::string slotDirName(int slot) { return "s" + std::to_string(slot); }

std::string deviceKey(const std::string& className, const std::string& deviceId) {
  return className + "/" + deviceId;
}

std::vector<AdvertisedDevice> advertise(const DeviceClass& cls, const std::vector<TrackedDevice>& devices) {
  std::vector<AdvertisedDevice> out;
  for (const auto& t : devices) {
    if (t.device.className != cls.name) continue;
    AdvertisedDevice a{t.device.id, t.device.id, -1, t.healthy, t.device.numaNode, t.device};
    if (cls.mode == Mode::Device) {
      out.push_back(std::move(a));
      continue;
    }
    for (int k = 0; k < cls.slots; ++k) {
      AdvertisedDevice slot = a;
      slot.slot = k;
      slot.id = a.physicalId + "-" + slotDirName(k);
      out.push_back(std::move(slot));
    }
  }
  return out;
}

}  // namespace kubeaccel
