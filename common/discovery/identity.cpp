#include "discovery/identity.hpp"

#include <cctype>
#include <charconv>

namespace kubeaccel {
namespace {

bool allDigits(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

// "2-1" -> 2; -1 when the path does not start with a bus number.
long busOf(const std::string& portPath) {
  long bus = -1;
  auto [ptr, ec] = std::from_chars(portPath.data(), portPath.data() + portPath.size(), bus);
  return ec == std::errc() && ptr != portPath.data() && *ptr == '-' ? bus : -1;
}

}  // namespace

std::string filenameSafe(const std::string& s) {
  std::string out = s;
  for (char& c : out)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') c = '-';
  // "." and ".." are names no directory may take.
  if (out.empty() || out == "." || out == "..") out = "_" + out;
  return out;
}

std::string stableId(const Device& d) {
  if (d.subsystem == "usb") return "usb-" + filenameSafe(d.portKey);
  return filenameSafe(d.portKey);
}

std::optional<std::string> usbPortPathOfPortName(const std::string& name) {
  auto at = name.rfind("-port");
  if (at == std::string::npos || at == 0) return std::nullopt;
  std::string hub = name.substr(0, at), port = name.substr(at + 5);
  if (!allDigits(port)) return std::nullopt;
  if (hub.rfind("usb", 0) == 0) {
    std::string bus = hub.substr(3);
    return allDigits(bus) ? std::optional(bus + "-" + port) : std::nullopt;
  }
  if (busOf(hub) < 0) return std::nullopt;
  return hub + "." + port;
}

std::string usbSocketPath(const std::string& portPath, const std::optional<std::string>& peerPortPath) {
  if (!peerPortPath) return portPath;
  long mine = busOf(portPath), peer = busOf(*peerPortPath);
  if (peer < 0 || (mine >= 0 && mine <= peer)) return portPath;
  return *peerPortPath;
}

}  // namespace kubeaccel
