#include "discovery/udev_scanner.hpp"

#include <spdlog/spdlog.h>

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <set>
#include <stdexcept>

#include "discovery/identity.hpp"
#include "discovery/node_requirements.hpp"
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
  std::optional<UsbSession> usb;
  for (const std::string& path : scanSyspaths(e.get())) {
    if (taken.count(path)) continue;
    UdevDevicePtr dev(udev_device_new_from_syspath(udev_.get(), path.c_str()));
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
  for (const std::string& path : scanSyspaths(e.get())) {
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

// Why a device lacks nodes, for the log and `kubeaccel devices`: what is
// missing and, for a PCI function, what its driver did.
std::string nodeProblem(udev_device* dev, const DeviceClass& cls, const std::vector<std::string>& own) {
  if (!own.empty()) return missingNodes(own, cls);
  std::string problem = "no device node";
  for (size_t i = 0; i < cls.childSubsystems.size(); ++i) problem += (i ? "/" : " of subsystem ") + cls.childSubsystems[i];
  if (str(udev_device_get_subsystem(dev)) != "pci") return problem;
  std::string name = str(udev_device_get_sysname(dev));
  const char* driver = udev_device_get_driver(dev);
  if (!driver) return problem + ": no driver is bound to " + name;
  return problem + ": driver '" + std::string(driver) + "' is bound to " + name + " but made none";
}

// "0000:af:00.1" -> "0000:af:00.0": a card is named by its function 0, which
// exists whenever the card does (PCI requires it), whichever functions a
// class claims and whichever came first.
std::string cardName(const std::string& function) {
  auto dot = function.rfind('.');
  return dot == std::string::npos ? function : function.substr(0, dot) + ".0";
}

}  // namespace

std::vector<UdevDevicePtr> UdevScanner::members(udev_device* dev, const DeviceClass& cls, const std::string& gone) {
  std::string subsystem = str(udev_device_get_subsystem(dev));
  if (subsystem == "pci") return cardFunctions(dev, cls, gone);
  std::vector<UdevDevicePtr> out;
  udev_device* pci = subsystem == "accel" ? udev_device_get_parent_with_subsystem_devtype(dev, "pci", nullptr) : nullptr;
  if (!pci) {
    if (!isAtOrUnder(str(udev_device_get_syspath(dev)), gone)) out.emplace_back(udev_device_ref(dev));
    return out;
  }
  // Every accel node of one PCI function is one device.
  UdevEnumeratePtr e(udev_enumerate_new(udev_.get()));
  udev_enumerate_add_match_subsystem(e.get(), "accel");
  udev_enumerate_add_match_parent(e.get(), pci);
  for (const std::string& path : scanSyspaths(e.get())) {
    if (isAtOrUnder(path, gone)) continue;
    UdevDevicePtr a(udev_device_new_from_syspath(udev_.get(), path.c_str()));
    if (a && classify(config_, factsOf(a.get())) == &cls) out.push_back(std::move(a));
  }
  std::sort(out.begin(), out.end(), [](const UdevDevicePtr& a, const UdevDevicePtr& b) {
    return str(udev_device_get_syspath(a.get())) < str(udev_device_get_syspath(b.get()));
  });
  return out;
}

std::optional<Device> UdevScanner::read(udev_device* dev, const DeviceFacts& f, const DeviceClass& cls,
                                        const UsbSession* usb, const std::string& gone) {
  std::vector<UdevDevicePtr> parts = members(dev, cls, gone);
  if (parts.empty()) return std::nullopt;
  dev = parts.front().get();  // a card is read from its lowest function
  DeviceFacts facts = parts.size() > 1 || f.subsystem == "pci" ? factsOf(dev) : f;
  Device d;
  d.className = cls.name;
  d.syspath = str(udev_device_get_syspath(dev));
  d.subsystem = facts.subsystem;
  d.vendor = facts.vendor;
  d.product = d.subsystem == "usb" ? facts.product : facts.device;
  d.serial = facts.serial;
  std::string sysname = str(udev_device_get_sysname(dev));
  std::string where;
  for (const auto& p : parts) {
    d.members.push_back(str(udev_device_get_syspath(p.get())));
    where += (where.empty() ? "" : ",") + str(udev_device_get_sysname(p.get()));
  }
  if (d.subsystem == "accel") {
    // Known by the PCI function it sits on, else by its parent: accelN is
    // numbered in probe order. A virtual one, with neither, by its name.
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
    bool virtualFunction = ::access((d.syspath + "/physfn").c_str(), F_OK) == 0;
    d.portKey = virtualFunction ? sysname : cardName(sysname);
    d.busLocation = "pci " + where;
  }
  d.id = stableId(d);
  try {
    d.numaNode = numaNodeOf(dev);
  } catch (const std::exception& e) {
    spdlog::error("skipping {} device {}: {}", cls.name, d.syspath, e.what());
    return std::nullopt;
  }
  for (const auto& p : parts) {
    auto more = ownNodesOf(udev_.get(), p.get(), cls, gone);
    d.nodes.insert(d.nodes.end(), more.begin(), more.end());
  }
  std::optional<std::string> nvidiaProblem;
  if (d.subsystem == "pci" && d.vendor == "10de") {
    // The NVIDIA driver's nodes are no sysfs children; the driver names them.
    try {
      if (auto node = nvidiaNodeOf(sysname))
        d.nodes.push_back(*node);
      else
        nvidiaProblem = "no /dev/nvidiaN: the NVIDIA driver has not claimed it (no /proc/driver/nvidia/gpus/" +
                        sysname + ")";
    } catch (const std::exception& e) {
      spdlog::error("skipping {} device {}: {}", cls.name, d.syspath, e.what());
      return std::nullopt;
    }
  }
  std::sort(d.nodes.begin(), d.nodes.end());
  d.nodes.erase(std::unique(d.nodes.begin(), d.nodes.end()), d.nodes.end());
  d.problem = nvidiaProblem ? *nvidiaProblem : nodeProblem(dev, cls, d.nodes);
  auto extra = extraNodesOf(cls);
  d.nodes.insert(d.nodes.end(), extra.begin(), extra.end());
  std::sort(d.nodes.begin(), d.nodes.end());
  d.nodes.erase(std::unique(d.nodes.begin(), d.nodes.end()), d.nodes.end());
  return d;
}

}  // namespace kubeaccel
