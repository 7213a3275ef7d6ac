#pragma once
// What discovery reports: one physical accelerator, as the catalog classifies it.

#include <string>
#include <vector>

namespace kubeaccel {

struct Device {
  std::string className;
  std::string id;            // stable across re-enumeration; filename-safe
  std::string syspath;       // where the kernel has it right now
  std::string subsystem;     // "usb", "pci", "accel"
  std::string vendor;        // 4 hex digits
  std::string product;       // USB idProduct or PCI device ID
  std::string busLocation;   // "usb 1-2.3", "pci 0000:3b:00.0"
  std::string portKey;       // what identifies the slot it sits in: USB port path, PCI address
  std::string serial;        // empty when the device has none
  // Whether the serial may name the device. Not for a class that
  // re-enumerates: its serial changes with the firmware state (an NCS2 reports
  // 03e72485 until it boots), so only the port survives a restart.
  bool serialNamesIt = true;
  std::vector<std::string> nodes;  // host device nodes, sorted
  int numaNode = -1;
  int usbSpeedMbps = 0;      // USB link speed from libusb; 0 when unknown or not USB
  int usbConfigurations = 0; // bNumConfigurations from libusb; 0 when unknown or not USB

  bool operator==(const Device&) const = default;
};

}  // namespace kubeaccel
