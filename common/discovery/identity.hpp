#pragma once
// Device identity: a function of what a device is and where it sits, never of
// which other devices are present (shared/DESIGN.md "Device identity").
//   USB:   "usb-" + the port path of the physical socket. A socket of an xHCI
//          controller is two ports, one on its USB 2 root hub and one on its
//          USB 3 root hub (or the two halves of a USB 3 hub), tied by the
//          kernel's "peer" links; the socket is named by its USB 2 half.
//   PCI:   the address of the card's lowest claimed function ("0000-3b-00.0").
//   accel: its PCI function's address, else its parent device's name.
// Serials never name a device: cheap devices share them, sticks change them
// with their firmware state, and a serial seen once says nothing of the next
// device plugged in. IDs are filename-safe.

#include <optional>
#include <string>

#include "discovery/device.hpp"

namespace kubeaccel {

// Characters outside [A-Za-z0-9._-] become '-' ("0000:3b:00.0" -> "0000-3b-00.0").
std::string filenameSafe(const std::string& s);

// The ID of `d`, from d.subsystem and d.portKey.
std::string stableId(const Device& d);

// The port path that a USB port device's directory name stands for:
// "usb1-port3" (root hub 1, port 3) -> "1-3"; "1-6-port4" (port 4 of the hub
// at 1-6) -> "1-6.4". nullopt for any other name. Source: the kernel names
// port devices "<hub>-port<N>" (drivers/usb/core/port.c).
std::optional<std::string> usbPortPathOfPortName(const std::string& portName);

// The port path that names the socket of a device at `portPath` whose port's
// peer is at `peerPortPath` (nullopt when the port has no peer): of the two,
// the one on the lower-numbered bus, which is the USB 2 half, since an xHCI
// controller registers its USB 2 root hub before its USB 3 one.
std::string usbSocketPath(const std::string& portPath, const std::optional<std::string>& peerPortPath);

}  // namespace kubeaccel
