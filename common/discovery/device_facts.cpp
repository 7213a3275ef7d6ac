#include "discovery/device_facts.hpp"

#include <algorithm>
#include <cctype>

namespace kubeaccel {

std::string normalizeHex(std::string v) {
  while (!v.empty() && std::isspace(static_cast<unsigned char>(v.back()))) v.pop_back();
  if (v.rfind("0x", 0) == 0 || v.rfind("0X", 0) == 0) v = v.substr(2);
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::tolower(c); });
  return v;
}

bool matches(const MatchRule& rule, const DeviceFacts& f) {
  if (rule.subsystem != f.subsystem) return false;
  // Only whole USB devices are advertised, never their interfaces or hubs' ports.
  if (f.subsystem == "usb" && f.devtype != "usb_device") return false;
  if (rule.vendor && *rule.vendor != f.vendor) return false;
  if (rule.product && *rule.product != f.product) return false;
  if (rule.device && *rule.device != f.device) return false;
  if (rule.pciClass && f.pciClass.rfind(*rule.pciClass, 0) != 0) return false;
  if (rule.serial && *rule.serial != f.serial) return false;
  for (const auto& [key, want] : rule.properties) {
    auto got = f.property ? f.property(key) : std::nullopt;
    if (!got || *got != want) return false;
  }
  for (const auto& [key, want] : rule.attributes) {
    auto got = f.attribute ? f.attribute(key) : std::nullopt;
    if (!got || *got != want) return false;
  }
  return true;
}

const DeviceClass* classify(const Config& config, const DeviceFacts& facts) {
  for (const auto& c : config.classes)
    for (const auto& rule : c.match)
      if (matches(rule, facts)) return &c;
  return nullptr;
}

}  // namespace kubeaccel
