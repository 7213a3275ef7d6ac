#pragma once
// Device identity: the serial number, else the physical port path, else the
// PCI address; always usable as a file name.

#include <string>
#include <vector>

#include "discovery/device.hpp"

namespace kubeaccel {

// Characters outside [A-Za-z0-9._-] become '-' ("0000:3b:00.0" -> "0000-3b-00.0").
std::string filenameSafe(const std::string& s);

// `serialUsable` is false when the serial is missing or shared with another
// device on the node (unbooted NCS2s all report "03e72485"); a device whose
// class re-enumerates is always named by its port (Device::serialNamesIt).
std::string stableId(const Device& d, bool serialUsable);

// Gives every device of one enumeration its ID; a serial that two of them
// share names neither.
void assignIds(std::vector<Device>& devices);

}  // namespace kubeaccel
