#pragma once
// Owning handles for libudev objects.

#include <libudev.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace kubeaccel {

struct UdevUnref {
  void operator()(udev* p) const { udev_unref(p); }
  void operator()(udev_device* p) const { udev_device_unref(p); }
  void operator()(udev_enumerate* p) const { udev_enumerate_unref(p); }
  void operator()(udev_monitor* p) const { udev_monitor_unref(p); }
};
using UdevPtr = std::unique_ptr<udev, UdevUnref>;
using UdevDevicePtr = std::unique_ptr<udev_device, UdevUnref>;
using UdevEnumeratePtr = std::unique_ptr<udev_enumerate, UdevUnref>;
using UdevMonitorPtr = std::unique_ptr<udev_monitor, UdevUnref>;

inline std::optional<std::string> sysattr(udev_device* d, const char* name) {
  const char* v = udev_device_get_sysattr_value(d, name);
  if (!v) return std::nullopt;
  std::string s(v);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

inline std::string str(const char* s) { return s ? s : ""; }

// Runs the enumeration `e` (its matches set) and returns the syspaths found.
inline std::vector<std::string> scanSyspaths(udev_enumerate* e) {
  std::vector<std::string> out;
  udev_enumerate_scan_devices(e);
  udev_list_entry* entry;
  udev_list_entry_foreach(entry, udev_enumerate_get_list_entry(e)) out.push_back(str(udev_list_entry_get_name(entry)));
  return out;
}

}  // namespace kubeaccel
