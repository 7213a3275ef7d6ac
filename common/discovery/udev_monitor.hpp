#pragma once
// The udev netlink monitor: one readable fd, drained into (action, syspath) pairs.

#include <string>
#include <vector>

#include "discovery/udev_handles.hpp"

namespace kubeaccel {

struct Uevent {
  std::string action;  // "add", "remove", "change", "bind", "unbind", "move"
  std::string syspath;
};

class UdevMonitor {
 public:
  // Throws std::runtime_error when the monitor cannot be opened.
  explicit UdevMonitor(udev* u);
  int fd() const;
  // Everything received so far; never blocks.
  std::vector<Uevent> drain();

 private:
  UdevMonitorPtr monitor_;
};

}  // namespace kubeaccel
