#include "discovery/identity.hpp"

#include <cctype>
#include <map>

namespace kubeaccel {

std::string filenameSafe(const std::string& s) {
  std::string out = s;
  for (char& c : out)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') c = '-';
  // "." and ".." are names no directory may take.
  if (out.empty() || out == "." || out == "..") out = "_" + out;
  return out;
}

std::string stableId(const Device& d, bool serialUsable) {
  if (serialUsable && d.serialNamesIt && !d.serial.empty()) return filenameSafe(d.serial);
  if (d.subsystem == "usb") return "usb-" + filenameSafe(d.portKey);
  return filenameSafe(d.portKey);
}

void assignIds(std::vector<Device>& devices) {
  std::map<std::string, int> serialCount;
  for (const auto& d : devices)
    if (!d.serial.empty()) ++serialCount[d.serial];
  for (auto& d : devices) d.id = stableId(d, !d.serial.empty() && serialCount[d.serial] == 1);
}

}  // namespace kubeaccel
