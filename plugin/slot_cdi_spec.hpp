#pragma once
// The CDI spec of an agent-mode resource: how a CDI-aware runtime mounts a slot with the mount
// options the device-plugin API's Mount cannot carry (nosuid, nodev, noexec), so that nothing a
// tenant writes into its slot can run setuid, as a device, or at all, from that mount.

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "discovery/advertisement.hpp"

namespace kubeaccel {

// Options of both of a slot's bind mounts; the slot directory adds "ro", its shm/ "rw".
inline constexpr const char* kSlotMountOptions[] = {"rbind", "nosuid", "nodev", "noexec"};

// The CDI device name of `slot` mounted as a container's index-th slot: "<slot-id>" for the first
// (at /run/kubeaccel), "<slot-id>.<index>" for the others (at /run/kubeaccel-<index>), since a
// CDI device has one fixed container path. Slot IDs end in "-s<k>", so the suffix is unambiguous.
std::string slotCdiDeviceId(const std::string& slotId, std::size_t index);

// One CDI device per (slot, index < devices.size()): its containerEdits mount the slot directory
// <agentDir>/<className>/<device-id>/s<k> read-only and its shm/ read-write, both bind mounts
// with kSlotMountOptions, and set KUBEACCEL_CDI_DEVICE. CDI mounts replace a mount at the same
// container path, so they take the place of Allocate's plain mounts where the runtime applies CDI.
nlohmann::json slotCdiSpec(const std::string& kind, const std::string& className, const std::string& agentDir,
                           const std::vector<AdvertisedDevice>& slots);

}  // namespace kubeaccel
