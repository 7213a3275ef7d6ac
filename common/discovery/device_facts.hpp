#pragma once
// The facts a match rule looks at, read from udev or built by hand in tests.

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace kubeaccel {

struct DeviceFacts {
  std::string subsystem;
  std::string devtype;
  std::string vendor;    // lower-case hex, no 0x
  std::string product;   // USB idProduct
  std::string device;    // PCI device ID
  std::string pciClass;  // 6 hex digits
  std::string serial;
  std::function<std::optional<std::string>(const std::string&)> property;
  std::function<std::optional<std::string>(const std::string&)> attribute;
};

bool matches(const MatchRule& rule, const DeviceFacts& facts);

// The first class (in catalog order) with an alternative that holds, or null.
const DeviceClass* classify(const Config& config, const DeviceFacts& facts);

// "0x1AC1\n" -> "1ac1"
std::string normalizeHex(std::string value);

}  // namespace kubeaccel
