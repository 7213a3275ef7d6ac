#pragma once
// What libusb knows of a USB device beyond udev: its port path, link speed and
// number of configurations. Read from the descriptors the kernel caches, so
// the device is never opened and never taken from a process using it.

#include <optional>
#include <string>

struct libusb_context;

namespace kubeaccel {

struct UsbDetails {
  std::string portPath;  // "1-2.3": bus, then port numbers from the root hub
  int speedMbps = 0;     // 0 when libusb does not know
  int configurations = 0;
};

// One libusb session: open it for a scan, drop it after (libusb keeps a
// hotplug thread while a context lives).
class UsbSession {
 public:
  UsbSession();  // never throws; without libusb, details() answers nullopt
  ~UsbSession();
  UsbSession(const UsbSession&) = delete;
  UsbSession& operator=(const UsbSession&) = delete;

  std::optional<UsbDetails> details(int bus, int address) const;

 private:
  libusb_context* ctx_ = nullptr;
};

}  // namespace kubeaccel
