#pragma once
// Reads the catalog's devices out of udev: what they are, their nodes and NUMA
// node. Knows nothing of kubelets or sockets.

#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "discovery/device.hpp"
#include "discovery/device_facts.hpp"
#include "discovery/udev_handles.hpp"
#include "discovery/usb_details.hpp"

namespace kubeaccel {

class UdevScanner {
 public:
  // Throws std::runtime_error if libudev cannot start.
  explicit UdevScanner(const Config& config);

  // Every device the catalog claims now, with its ID.
  std::vector<Device> scanAll();

  // The claimed device at `syspath`, or the claimed device that owns it (a
  // child device carrying a node, a USB interface). nullopt when none.
  // `gone`: a syspath being removed; it and what is under it are left out.
  std::optional<Device> resolve(const std::string& syspath, const std::string& gone = "");

  udev* handle() const { return udev_.get(); }

 private:
  std::optional<Device> claimedOwner(udev_device* dev, const UsbSession* usb, const std::string& gone);
  std::optional<Device> read(udev_device* dev, const DeviceFacts& facts, const DeviceClass& cls,
                             const UsbSession* usb, const std::string& gone);
  // What the device `dev` belongs to is made of, lowest first: the functions
  // of its PCI card, or the accel nodes of its PCI function, or itself.
  std::vector<UdevDevicePtr> members(udev_device* dev, const DeviceClass& cls, const std::string& gone);
  // The functions of the PCI card `dev` is on that `cls` claims, lowest first.
  std::vector<UdevDevicePtr> cardFunctions(udev_device* dev, const DeviceClass& cls, const std::string& gone);
  bool claimedByAncestor(udev_device* dev);

  const Config& config_;
  UdevPtr udev_;
};

}  // namespace kubeaccel
