#pragma once
// What discovery reports: one physical accelerator, as the catalog classifies it.

#include <string>
#include <vector>

namespace kubeaccel {

struct Device {
  std::string className;
  std::string id;            // stable across re-enumeration; filename-safe
  std::string syspath;       // where the kernel has it right now (a card: its lowest function)
  // Every sysfs device it is made of: the PCI functions of one card (same
  // domain:bus:device), else just `syspath`. Sorted.
  std::vector<std::string> members;
  std::string subsystem;     // "usb", "pci", "accel"
  std::string vendor;        // 4 hex digits
  std::string product;       // USB idProduct or PCI device ID
  std::string busLocation;   // where it is now: "usb 2-1", "pci 0000:3b:00.0"
  // Where it sits, which names it (see identity.hpp): the physical USB socket's
  // port path (the USB 2 half of a USB 2/USB 3 pair), the address of a card's
  // lowest PCI function, or an accel device's parent.
  std::string portKey;
  std::string serial;        // empty when the device has none; shown, never part of the ID
  std::vector<std::string> nodes;  // host device nodes, sorted
  // Why it cannot be used now ("no device node: no driver is bound"); empty
  // when nothing is missing. A device with a problem is advertised Unhealthy.
  std::string problem;
  int numaNode = -1;
  int usbSpeedMbps = 0;      // USB link speed from libusb; 0 when unknown or not USB
  int usbConfigurations = 0; // bNumConfigurations from libusb; 0 when unknown or not USB

  // The PCI address of a PCI device ("0000:3b:00.0", from busLocation), or ""
  // for any other device.
  std::string pciAddress() const {
    return subsystem == "pci" && busLocation.rfind("pci ", 0) == 0 ? busLocation.substr(4) : "";
  }

  bool operator==(const Device&) const = default;
};

}  // namespace kubeaccel
