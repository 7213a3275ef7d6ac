#pragma once
// Builds the DeviceFacts of a udev device, and the device-level reads that
// need sysfs: nodes and NUMA node.

#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "discovery/device_facts.hpp"
#include "discovery/udev_handles.hpp"

namespace kubeaccel {

// True for the devices a class can claim: whole USB devices, PCI functions and
// `accel` class devices.
bool isCandidate(udev_device* dev);

DeviceFacts factsOf(udev_device* dev);

// Host device nodes of `dev` itself and, for PCI, of its descendants
// (restricted to `cls.childSubsystems` if set), sorted. Devices at or under
// `gone` (a syspath whose removal is being handled; "" for none) are left out:
// sysfs may still show them.
std::vector<std::string> ownNodesOf(udev* u, udev_device* dev, const DeviceClass& cls, const std::string& gone = "");

// The class's extra nodes (/dev/nvidiactl, ...) that exist on the host.
std::vector<std::string> extraNodesOf(const DeviceClass& cls);

// Is `syspath` equal to `root` or below it?
bool isAtOrUnder(const std::string& syspath, const std::string& root);

// The port path of the physical socket the USB device at `syspath` (named
// `portPath` by the kernel, e.g. "2-1") sits in, through its "port/peer" link
// (see usbSocketPath in identity.hpp). `portPath` when its port has no peer.
std::string usbSocketOf(const std::string& syspath, const std::string& portPath);

// /dev/nvidiaN of an NVIDIA GPU, N being the "Device Minor" the driver reports
// in <proc>/driver/nvidia/gpus/<bdf>/information. nullopt when the driver has
// not claimed it; throws std::runtime_error naming the file when malformed.
// <proc> is $KUBEACCEL_PROC_ROOT if set (tests), else /proc.
std::optional<std::string> nvidiaNodeOf(const std::string& pciAddress);

// NUMA node of the device or of its nearest PCI ancestor; -1 when none.
// Throws std::runtime_error naming the file when the value is malformed.
int numaNodeOf(udev_device* dev);

}  // namespace kubeaccel
