#include "container_allocation.hpp"

#include <set>

#include "cdi_spec.hpp"
#include "slot_cdi_spec.hpp"

namespace kubeaccel {
namespace {

std::string join(const std::vector<std::string>& parts, const char* sep = ",") {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : sep) + p;
  return out;
}

}  // namespace

std::string slotMountPath(std::size_t index) {
  return index == 0 ? kSlotMountPath : std::string(kSlotMountPath) + "-" + std::to_string(index);
}

std::string slotDirectory(const std::string& agentDir, const std::string& className, const AdvertisedDevice& slot) {
  return agentDir + "/" + className + "/" + slot.physicalId + "/" + slotDirName(slot.slot);
}

v1beta1::ContainerAllocateResponse containerAllocation(const DeviceClass& cls,
                                                       const std::vector<const AdvertisedDevice*>& devices,
                                                       const AllocationPaths& paths) {
  v1beta1::ContainerAllocateResponse resp;
  std::vector<std::string> ids;
  for (const auto* d : devices) ids.push_back(d->id);
  auto& env = *resp.mutable_envs();
  env["KUBEACCEL_DEVICE_IDS"] = join(ids);

  if (cls.mode == Mode::Device) {
    std::set<std::string> seen;
    std::vector<std::string> nodes;
    for (const auto* d : devices)
      for (const auto& node : d->device.nodes) {
        if (!seen.insert(node).second) continue;  // shared nodes such as /dev/nvidiactl
        auto* spec = resp.add_devices();
        spec->set_host_path(node);
        spec->set_container_path(node);
        spec->set_permissions("rw");
        nodes.push_back(node);
      }
    env["KUBEACCEL_DEVICE_NODES"] = join(nodes);
    if (!paths.cdiKind.empty())
      for (const auto* d : devices) resp.add_cdi_devices()->set_name(cdiDeviceName(paths.cdiKind, d->id));
    return resp;
  }

  // The directory, not the socket file, is mounted: a bind-mounted socket goes
  // stale when the agent restarts and recreates it.
  std::vector<std::string> sockets;
  for (size_t i = 0; i < devices.size(); ++i) {
    std::string inside = slotMountPath(i);
    // Read-only: the socket's directory is the agent's, and a pod running as
    // root in its container must not delete or replace the socket (a
    // read-only mount holds even against root). The pod writes its
    // shared-memory files only in shm/, mounted read-write over it.
    std::string host = slotDirectory(paths.agentDir, cls.name, *devices[i]);
    auto* m = resp.add_mounts();
    m->set_host_path(host);
    m->set_container_path(inside);
    m->set_read_only(true);
    auto* shm = resp.add_mounts();
    shm->set_host_path(host + "/shm");
    shm->set_container_path(inside + "/shm");
    shm->set_read_only(false);
    sockets.push_back("unix://" + inside + "/inference.sock");
    // Kept beside the plain mounts: a runtime without CDI ignores the names and uses the mounts.
    if (!paths.cdiKind.empty())
      resp.add_cdi_devices()->set_name(cdiDeviceName(paths.cdiKind, slotCdiDeviceId(devices[i]->id, i)));
  }
  env["KUBEACCEL_INFERENCE_SOCKET"] = sockets.front();
  env["KUBEACCEL_DEVICE_ID"] = devices.front()->id;
  if (devices.size() > 1) env["KUBEACCEL_INFERENCE_SOCKETS"] = join(sockets);
  return resp;
}

}  // namespace kubeaccel
