#include "discovery/udev_monitor.hpp"

#include <fcntl.h>

#include <stdexcept>

namespace kubeaccel {

UdevMonitor::UdevMonitor(udev* u) : monitor_(udev_monitor_new_from_netlink(u, "udev")) {
  if (!monitor_) throw std::runtime_error("libudev: cannot open the netlink monitor");
  if (udev_monitor_enable_receiving(monitor_.get()) < 0)
    throw std::runtime_error("libudev: cannot enable the netlink monitor");
  int fd = udev_monitor_get_fd(monitor_.get());
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
}

int UdevMonitor::fd() const { return udev_monitor_get_fd(monitor_.get()); }

std::vector<Uevent> UdevMonitor::drain() {
  std::vector<Uevent> out;
  while (UdevDevicePtr dev{udev_monitor_receive_device(monitor_.get())}) {
    out.push_back({str(udev_device_get_action(dev.get())), str(udev_device_get_syspath(dev.get()))});
  }
  return out;
}

}  // namespace kubeaccel
