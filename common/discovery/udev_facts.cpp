#include "discovery/udev_facts.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <stdexcept>

#include "discovery/identity.hpp"

namespace kubeaccel {
namespace {

bool isSubsystem(udev_device* d, const char* s) { return str(udev_device_get_subsystem(d)) == s; }

udev_device* nearestPci(udev_device* dev) {
  for (udev_device* d = dev; d; d = udev_device_get_parent(d))
    if (isSubsystem(d, "pci")) return d;
  return nullptr;
}

}  // namespace

bool isCandidate(udev_device* dev) {
  std::string subsystem = str(udev_device_get_subsystem(dev));
  if (subsystem == "usb") return str(udev_device_get_devtype(dev)) == "usb_device";
  return subsystem == "pci" || subsystem == "accel";
}

DeviceFacts factsOf(udev_device* dev) {
  DeviceFacts f;
  f.subsystem = str(udev_device_get_subsystem(dev));
  f.devtype = str(udev_device_get_devtype(dev));
  auto attr = [dev](const char* name) { return sysattr(dev, name).value_or(""); };
  if (f.subsystem == "usb") {
    f.vendor = normalizeHex(attr("idVendor"));
    f.product = normalizeHex(attr("idProduct"));
    f.serial = attr("serial");
  } else if (f.subsystem == "pci") {
    f.vendor = normalizeHex(attr("vendor"));
    f.device = normalizeHex(attr("device"));
    f.pciClass = normalizeHex(attr("class"));
  }
  f.property = [dev](const std::string& key) -> std::optional<std::string> {
    const char* v = udev_device_get_property_value(dev, key.c_str());
    return v ? std::optional<std::string>(v) : std::nullopt;
  };
  f.attribute = [dev](const std::string& key) { return sysattr(dev, key.c_str()); };
  return f;
}

bool isAtOrUnder(const std::string& syspath, const std::string& root) {
  return !root.empty() && syspath.compare(0, root.size(), root) == 0 &&
         (syspath.size() == root.size() || syspath[root.size()] == '/');
}

std::vector<std::string> ownNodesOf(udev* u, udev_device* dev, const DeviceClass& cls, const std::string& gone) {
  std::vector<std::string> nodes;
  if (const char* node = udev_device_get_devnode(dev)) nodes.emplace_back(node);
  if (isSubsystem(dev, "pci")) {
    UdevEnumeratePtr e(udev_enumerate_new(u));
    udev_enumerate_add_match_parent(e.get(), dev);
    for (const std::string& path : scanSyspaths(e.get())) {
      if (path == str(udev_device_get_syspath(dev)) || isAtOrUnder(path, gone)) continue;
      UdevDevicePtr child(udev_device_new_from_syspath(u, path.c_str()));
      if (!child) continue;
      const char* node = udev_device_get_devnode(child.get());
      if (!node) continue;
      std::string subsystem = str(udev_device_get_subsystem(child.get()));
      if (!cls.childSubsystems.empty() &&
          std::find(cls.childSubsystems.begin(), cls.childSubsystems.end(), subsystem) == cls.childSubsystems.end())
        continue;
      nodes.emplace_back(node);
    }
  }
  std::sort(nodes.begin(), nodes.end());
  nodes.erase(std::unique(nodes.begin(), nodes.end()), nodes.end());
  return nodes;
}

std::vector<std::string> extraNodesOf(const DeviceClass& cls) {
  std::vector<std::string> nodes;
  for (const auto& extra : cls.extraNodes) {
    struct stat st;
    if (::stat(extra.c_str(), &st) == 0) nodes.push_back(extra);
  }
  return nodes;
}

std::string usbSocketOf(const std::string& syspath, const std::string& portPath) {
  // realpath, not std::filesystem: umockdev's preload answers realpath() for
  // its simulated sysfs.
  std::optional<std::string> peer;
  if (char* resolved = ::realpath((syspath + "/port/peer").c_str(), nullptr)) {
    std::string target = resolved;
    std::free(resolved);
    peer = usbPortPathOfPortName(target.substr(target.rfind('/') + 1));
  }
  return usbSocketPath(portPath, peer);
}

std::optional<std::string> nvidiaNodeOf(const std::string& pciAddress) {
  const char* root = std::getenv("KUBEACCEL_PROC_ROOT");
  std::string path = std::string(root ? root : "/proc") + "/driver/nvidia/gpus/" + pciAddress + "/information";
  std::ifstream in(path);
  if (!in) return std::nullopt;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("Device Minor:", 0) != 0) continue;
    std::string value = line.substr(line.find(':') + 1);
    value.erase(0, value.find_first_not_of(" \t"));
    while (!value.empty() && std::isspace(static_cast<unsigned char>(value.back()))) value.pop_back();
    int minor = -1;
    auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), minor);
    if (ec != std::errc() || ptr != value.data() + value.size() || minor < 0 || minor > 255)
      throw std::runtime_error(path + ": Device Minor: expected an integer from 0 to 255, got '" + value + "'");
    return "/dev/nvidia" + std::to_string(minor);
  }
  throw std::runtime_error(path + ": no 'Device Minor' line");
}

int numaNodeOf(udev_device* dev) {
  udev_device* pci = nearestPci(dev);
  if (!pci) return -1;
  auto raw = sysattr(pci, "numa_node");
  if (!raw) return -1;
  int value = 0;
  const char* begin = raw->data();
  const char* end = begin + raw->size();
  auto [ptr, ec] = std::from_chars(begin, end, value);
  if (ec != std::errc() || ptr != end || value < -1 || value > 1023)
    throw std::runtime_error(str(udev_device_get_syspath(pci)) + "/numa_node: expected an integer >= -1, got '" +
                             *raw + "'");
  return value;
}

}  // namespace kubeaccel
