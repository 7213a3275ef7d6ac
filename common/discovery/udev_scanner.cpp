#include "discovery/udev_scanner.hpp"

#include <spdlog/spdlog.h>

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <set>
#include <stdexcept>

#include "discovery/identity.hpp"
#include "discovery/udev_facts.hpp"

namespace kubeaccel {

UdevScanner::UdevScanner(const Config& config) : config_(config), udev_(udev_new()) {
  if (!udev_) throw std::runtime_error("libudev: udev_new failed");
}

std::vector<Device> UdevScanner::scanAll() {
  std::vector<Device> out;
  std::set<std::string> taken;  // syspaths already read as part of a device (a card's other functions)
  UdevEnumeratePtr e(udev_enumerate_new(udev_.get()));
  for (const char* s : {"usb", "pci", "accel"}) udev_enumerate_add_match_subsystem(e.get(), s);
  udev_enumerate_scan_devices(e.get());
  std::optional<UsbSession> usb;
  udev_list_entry* entry;
  udev_list_entry_foreach(entry, udev_enumerate_get_list_entry(e.get())) {
    if (taken.count(str(udev_list_entry_get_name(entry)))) continue;
    UdevDevicePtr dev(udev_device_new_from_syspath(udev_.get(), udev_list_entry_get_name(entry)));
    if (!dev || !isCandidate(dev.get())) continue;
    DeviceFacts facts = factsOf(dev.get());
    const DeviceClass* cls = classify(config_, facts);
    if (!cls) continue;
    if (str(udev_device_get_subsystem(dev.get())) == "accel" && claimedByAncestor(dev.get())) continue;
    if (str(udev_device_get_subsystem(dev.get())) == "usb" && !usb) usb.emplace();
    if (auto d = read(dev.get(), facts, *cls, usb ? &*usb : nullptr, "")) {
      taken.insert(d->members.begin(), d->members.end());
      out.push_back(std::move(*d));
    }
  }
  return out;
}

std::optional<Device> UdevScanner::resolve(const std::string& syspath, const std::string& gone) {
  UdevDevicePtr dev(udev_device_new_from_syspath(udev_.get(), syspath.c_str()));
  if (!dev) return std::nullopt;
  // libusb only for USB events: a session costs an enumeration and a thread.
  std::optional<UsbSession> usb;
  if (syspath.find("/usb") != std::string::npos) usb.emplace();
  return claimedOwner(dev.get(), usb ? &*usb : nullptr, gone);
}

// A node-carrying child belongs to its nearest claimed USB device or PCI
// function; an `accel` device is claimed on its own only when that owner is not.
std::optional<Device> UdevScanner::claimedOwner(udev_device* dev, const UsbSession* usb, const std::string& gone) {
  bool isAccel = str(udev_device_get_subsystem(dev)) == "accel";
  for (udev_device* d = isAccel ? udev_device_get_parent(dev) : dev; d; d = udev_device_get_parent(d)) {
    if (!isCandidate(d)) continue;
    DeviceFacts facts = factsOf(d);
    if (const DeviceClass* cls = classify(config_, facts)) return read(d, facts, *cls, usb, gone);
    if (str(udev_device_get_subsystem(d)) == "pci") break;  // nodes never belong above a PCI function
  }
  if (isAccel)
    if (DeviceFacts facts = factsOf(dev); const DeviceClass* cls = classify(config_, facts))
      return read(dev, facts, *cls, usb, gone);
  return std::nullopt;
}

// Functions at one domain:bus:device are one card (an Alveo's management and
// user functions). Virtual functions are not part of it: SR-IOV makes them to
// be handed out on their own.
std::vector<UdevDevicePtr> UdevScanner::cardFunctions(udev_device* dev, const DeviceClass& cls,
                                                      const std::string& gone) {
  std::vector<UdevDevicePtr> out;
  std::string self = str(udev_device_get_syspath(dev));
  std::string name = str(udev_device_get_sysname(dev));
  auto isVirtual = [](const std::string& path) { return ::access((path + "/physfn").c_str(), F_OK) == 0; };
  auto dot = name.rfind('.');
  if (dot == std::string::npos || isVirtual(self)) {
    if (!isAtOrUnder(self, gone)) out.emplace_back(udev_device_ref(dev));
    return out;
  }
  UdevEnumeratePtr e(udev_enumerate_new(udev_.get()));
  udev_enumerate_add_match_subsystem(e.get(), "pci");
  udev_enumerate_add_match_sysname(e.get(), (name.substr(0, dot + 1) + "*").c_str());
  udev_enumerate_scan_devices(e.get());
  udev_list_entry* entry;
  udev_list_entry_foreach(entry, udev_enumerate_get_list_entry(e.get())) {
    std::string path = str(udev_list_entry_get_name(entry));
    if (isAtOrUnder(path, gone)) continue;
    UdevDevicePtr f(udev_device_new_from_syspath(udev_.get(), path.c_str()));
    if (!f) continue;
    if (path != self && (isVirtual(path) || classify(config_, factsOf(f.get())) != &cls)) continue;
    out.push_back(std::move(f));
  }
  std::sort(out.begin(), out.end(), [](const UdevDevicePtr& a, const UdevDevicePtr& b) {
    return str(udev_device_get_sysname(a.get())) < str(udev_device_get_sysname(b.get()));
  });
  return out;
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
  if (std::string name = str(udev_device_get_sysname(dev)); details->portPath != name)
    spdlog::debug("{}: libusb port path {} differs from sysfs name {}", d.syspath, details->portPath, name);
  // An NCS2 or Coral on a USB 2 port runs, but several times slower.
  if (cls.reenumerates && details->speedMbps > 0 && details->speedMbps < 5000 &&
      (d.product == "f63b" || d.product == "9302"))
    spdlog::warn("{} device at {} runs at {} Mbps: plug it into a USB 3 port for full speed", cls.name,
                 d.busLocation, details->speedMbps);
}

// Why a device without nodes of its own has none, for the log and `kubeaccel devices`.
std::string noNodeProblem(udev_device* dev, const DeviceClass& cls) {
  std::string name = str(udev_device_get_sysname(dev));
  std::string which = cls.childSubsystems.empty() ? "no device node" : "no device node of subsystem ";
  for (size_t i = 0; i < cls.childSubsystems.size(); ++i) which += (i ? "/" : "") + cls.childSubsystems[i];
  if (str(udev_device_get_subsystem(dev)) != "pci") return which;
  const char* driver = udev_device_get_driver(dev);
  if (!driver) return which + ": no driver is bound to " + name;
  return which + ": driver '" + std::string(driver) + "' is bound to " + name + " but made none";
}

}  // namespace

std::optional<Device> UdevScanner::read(udev_device* dev, const DeviceFacts& f, const DeviceClass& cls,
                                        const UsbSession* usb, const std::string& gone) {
  std::vector<UdevDevicePtr> functions;
  DeviceFacts facts = f;
  if (f.subsystem == "pci") {
    functions = cardFunctions(dev, cls, gone);
    if (functions.empty()) return std::nullopt;
    dev = functions.front().get();  // a card is read from, and named by, its lowest function
    facts = factsOf(dev);
  }
  Device d;
  d.className = cls.name;
  d.syspath = str(udev_device_get_syspath(dev));
  d.subsystem = facts.subsystem;
  d.vendor = facts.vendor;
  d.product = d.subsystem == "usb" ? facts.product : facts.device;
  d.serial = facts.serial;
  std::string sysname = str(udev_device_get_sysname(dev));
  if (d.subsystem == "accel") {
    // An accel device is known by the PCI function it sits on, else by its
    // parent: accelN is numbered in probe order.
    udev_device* pci = udev_device_get_parent_with_subsystem_devtype(dev, "pci", nullptr);
    udev_device* parent = pci ? pci : udev_device_get_parent(dev);
    d.portKey = parent ? str(udev_device_get_sysname(parent)) : sysname;
    if (pci) {
      DeviceFacts pf = factsOf(pci);
      d.vendor = pf.vendor;
      d.product = pf.device;
    }
    d.busLocation = "accel " + d.portKey;
  } else if (d.subsystem == "usb") {
    d.portKey = usbSocketOf(d.syspath, sysname);
    d.busLocation = "usb " + sysname;
    if (usb) readUsbDetails(dev, cls, d, *usb);
  } else {
    d.portKey = sysname;
    d.busLocation = "pci ";
    for (size_t i = 0; i < functions.size(); ++i)
      d.busLocation += (i ? "," : "") + str(udev_device_get_sysname(functions[i].get()));
  }
  d.id = stableId(d);
  try {
    d.numaNode = numaNodeOf(dev);
  } catch (const std::exception& e) {
    spdlog::error("skipping {} device {}: {}", cls.name, d.syspath, e.what());
    return std::nullopt;
  }
  if (functions.empty()) {
    d.members = {d.syspath};
    d.nodes = ownNodesOf(udev_.get(), dev, cls, gone);
  }
  for (const auto& fn : functions) {
    d.members.push_back(str(udev_device_get_syspath(fn.get())));
    auto more = ownNodesOf(udev_.get(), fn.get(), cls, gone);
    d.nodes.insert(d.nodes.end(), more.begin(), more.end());
  }
  if (d.nodes.empty()) d.problem = noNodeProblem(dev, cls);
  if (d.subsystem == "pci" && d.vendor == "10de") {
    // The NVIDIA driver's nodes are no sysfs children; the driver names them.
    try {
      if (auto node = nvidiaNodeOf(sysname)) {
        d.nodes.push_back(*node);
        d.problem.clear();
      } else {
        d.problem = "no /dev/nvidiaN: the NVIDIA driver has not claimed it (no /proc/driver/nvidia/gpus/" + sysname +
                    ")";
      }
    } catch (const std::exception& e) {
      spdlog::error("skipping {} device {}: {}", cls.name, d.syspath, e.what());
      return std::nullopt;
    }
  }
  auto extra = extraNodesOf(cls);
  d.nodes.insert(d.nodes.end(), extra.begin(), extra.end());
  std::sort(d.nodes.begin(), d.nodes.end());
  d.nodes.erase(std::unique(d.nodes.begin(), d.nodes.end()), d.nodes.end());
  return d;
}

}  // namespace kubeaccel
