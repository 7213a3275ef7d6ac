#include "discovery/udev_scanner.hpp"

#include <spdlog/spdlog.h>

#include <charconv>
#include <stdexcept>

#include "discovery/udev_facts.hpp"

namespace kubeaccel {

UdevScanner::UdevScanner(const Config& config) : config_(config), udev_(udev_new()) {
  if (!udev_) throw std::runtime_error("libudev: udev_new failed");
}

std::vector<Device> UdevScanner::scanAll() {
  std::vector<Device> out;
  UdevEnumeratePtr e(udev_enumerate_new(udev_.get()));
  for (const char* s : {"usb", "pci", "accel"}) udev_enumerate_add_match_subsystem(e.get(), s);
  udev_enumerate_scan_devices(e.get());
  std::optional<UsbSession> usb;
  udev_list_entry* entry;
  udev_list_entry_foreach(entry, udev_enumerate_get_list_entry(e.get())) {
    UdevDevicePtr dev(udev_device_new_from_syspath(udev_.get(), udev_list_entry_get_name(entry)));
    if (!dev || !isCandidate(dev.get())) continue;
    DeviceFacts facts = factsOf(dev.get());
    const DeviceClass* cls = classify(config_, facts);
    if (!cls) continue;
    if (str(udev_device_get_subsystem(dev.get())) == "accel" && claimedByAncestor(dev.get())) continue;
    if (str(udev_device_get_subsystem(dev.get())) == "usb" && !usb) usb.emplace();
    if (auto d = read(dev.get(), facts, *cls, usb ? &*usb : nullptr)) out.push_back(std::move(*d));
  }
  return out;
}

std::optional<Device> UdevScanner::resolve(const std::string& syspath) {
  UdevDevicePtr dev(udev_device_new_from_syspath(udev_.get(), syspath.c_str()));
  if (!dev) return std::nullopt;
  // libusb only for USB events: a session costs an enumeration and a thread.
  std::optional<UsbSession> usb;
  if (syspath.find("/usb") != std::string::npos) usb.emplace();
  return claimedOwner(dev.get(), usb ? &*usb : nullptr);
}

// A node-carrying child belongs to its nearest claimed USB device or PCI
// function; an `accel` device is claimed on its own only when that owner is not.
std::optional<Device> UdevScanner::claimedOwner(udev_device* dev, const UsbSession* usb) {
  bool isAccel = str(udev_device_get_subsystem(dev)) == "accel";
  for (udev_device* d = isAccel ? udev_device_get_parent(dev) : dev; d; d = udev_device_get_parent(d)) {
    if (!isCandidate(d)) continue;
    DeviceFacts facts = factsOf(d);
    if (const DeviceClass* cls = classify(config_, facts)) return read(d, facts, *cls, usb);
    if (str(udev_device_get_subsystem(d)) == "pci") break;  // nodes never belong above a PCI function
  }
  if (isAccel)
    if (DeviceFacts facts = factsOf(dev); const DeviceClass* cls = classify(config_, facts))
      return read(dev, facts, *cls, usb);
  return std::nullopt;
}

bool UdevScanner::claimedByAncestor(udev_device* dev) {
  for (udev_device* d = udev_device_get_parent(dev); d; d = udev_device_get_parent(d)) {
    if (!isCandidate(d)) continue;
    if (classify(config_, factsOf(d))) return true;
    if (str(udev_device_get_subsystem(d)) == "pci") return false;
  }
  return false;
}

namespace {

int intAttr(udev_device* dev, const char* name) {
  auto v = sysattr(dev, name);
  int out = -1;
  if (v) std::from_chars(v->data(), v->data() + v->size(), out);
  return out;
}

// libusb's port path and speed; a mismatch with the kernel's name is logged,
// not trusted over it.
void readUsbDetails(udev_device* dev, const DeviceClass& cls, Device& d, const UsbSession& usb) {
  auto details = usb.details(intAttr(dev, "busnum"), intAttr(dev, "devnum"));
  if (!details) return;
  d.usbSpeedMbps = details->speedMbps;
  d.usbConfigurations = details->configurations;
  if (details->portPath != d.portKey)
    spdlog::debug("{}: libusb port path {} differs from sysfs name {}", d.syspath, details->portPath, d.portKey);
  // An NCS2 or Coral on a USB 2 port runs, but several times slower.
  if (cls.reenumerates && details->speedMbps > 0 && details->speedMbps < 5000 &&
      (d.product == "f63b" || d.product == "9302"))
    spdlog::warn("{} device at {} runs at {} Mbps: plug it into a USB 3 port for full speed", cls.name, d.portKey,
                 details->speedMbps);
}

}  // namespace

std::optional<Device> UdevScanner::read(udev_device* dev, const DeviceFacts& f, const DeviceClass& cls,
                                        const UsbSession* usb) {
  Device d;
  d.className = cls.name;
  d.syspath = str(udev_device_get_syspath(dev));
  d.subsystem = f.subsystem;
  d.vendor = f.vendor;
  d.product = d.subsystem == "usb" ? f.product : f.device;
  d.serial = f.serial;
  d.serialNamesIt = !cls.reenumerates;
  std::string sysname = str(udev_device_get_sysname(dev));
  if (d.subsystem == "accel") {
    // An accel device is known by the PCI function it sits on, when there is one.
    udev_device* pci = udev_device_get_parent_with_subsystem_devtype(dev, "pci", nullptr);
    d.portKey = pci ? str(udev_device_get_sysname(pci)) : sysname;
    if (pci) {
      DeviceFacts pf = factsOf(pci);
      d.vendor = pf.vendor;
      d.product = pf.device;
    }
  } else {
    d.portKey = sysname;
  }
  if (d.subsystem == "usb" && usb) readUsbDetails(dev, cls, d, *usb);
  d.busLocation = d.subsystem + " " + d.portKey;
  try {
    d.numaNode = numaNodeOf(dev);
  } catch (const std::exception& e) {
    spdlog::error("skipping {} device {}: {}", cls.name, d.syspath, e.what());
    return std::nullopt;
  }
  d.nodes = nodesOf(udev_.get(), dev, cls);
  if (d.subsystem == "pci" && d.vendor == "10de") {
    // The NVIDIA driver's nodes are no sysfs children; the driver names them.
    try {
      if (auto node = nvidiaNodeOf(sysname))
        d.nodes.insert(d.nodes.begin(), *node);
      else
        spdlog::warn("{} device {}: the NVIDIA driver has not claimed it (no /proc/driver/nvidia entry)", cls.name,
                     d.syspath);
    } catch (const std::exception& e) {
      spdlog::error("skipping {} device {}: {}", cls.name, d.syspath, e.what());
      return std::nullopt;
    }
  }
  if (d.subsystem == "usb" && d.nodes.empty()) {
    spdlog::error("skipping {} device {}: it has no device node", cls.name, d.syspath);
    return std::nullopt;
  }
  return d;
}

}  // namespace kubeaccel
