#include "slot_cdi_spec.hpp"

#include "cdi_spec.hpp"
#include "container_allocation.hpp"

namespace kubeaccel {

namespace {

nlohmann::json bindMount(const std::string& host, const std::string& inside, const char* access) {
  nlohmann::json options = nlohmann::json::array({access});
  for (const char* o : kSlotMountOptions) options.push_back(o);
  return {{"hostPath", host}, {"containerPath", inside}, {"type", "bind"}, {"options", options}};
}

}  // namespace

std::string slotCdiDeviceId(const std::string& slotId, std::size_t index) {
  return index == 0 ? slotId : slotId + "." + std::to_string(index);
}

nlohmann::json slotCdiSpec(const std::string& kind, const std::string& className, const std::string& agentDir,
                           const std::vector<AdvertisedDevice>& slots) {
  nlohmann::json list = nlohmann::json::array();
  // A container may hold several slots (each at its own path), so every slot gets a device for
  // every place it can take: slots.size() squared entries, a few hundred at most on a node.
  for (std::size_t index = 0; index < slots.size(); ++index)
    for (const auto& slot : slots) {
      std::string host = slotDirectory(agentDir, className, slot);
      std::string inside = slotMountPath(index);
      std::string name = slotCdiDeviceId(slot.id, index);
      list.push_back({{"name", name},
                      {"containerEdits",
                       {{"mounts", {bindMount(host, inside, "ro"), bindMount(host + "/shm", inside + "/shm", "rw")}},
                        {"env", {"KUBEACCEL_CDI_DEVICE=" + name}}}}});
    }
  return {{"cdiVersion", kCdiVersion}, {"kind", kind}, {"devices", list}};
}

}  // namespace kubeaccel
