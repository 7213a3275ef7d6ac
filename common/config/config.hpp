#pragma once
// The catalog and modes shared by both daemons (/etc/kubeaccel/config.json).

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace kubeaccel {

// One alternative of a class's `match` list; every key that is set must hold.
struct MatchRule {
  std::string subsystem;                          // "usb", "pci", "accel", ...
  std::optional<std::string> vendor;              // 4 lower-case hex digits
  std::optional<std::string> product;             // USB idProduct
  std::optional<std::string> device;              // PCI device id
  std::optional<std::string> pciClass;            // PCI class code prefix ("0302")
  std::optional<std::string> serial;
  std::map<std::string, std::string> properties;  // udev property -> value
  std::map<std::string, std::string> attributes;  // sysfs attribute -> value
};

enum class Mode { Device, Agent };
enum class SlotPolicy { Pack, Spread };

struct DeviceClass {
  std::string name;
  std::vector<MatchRule> match;
  Mode mode = Mode::Device;
  int slots = 1;
  std::string backend;
  // Empty: device nodes of every descendant; else only these subsystems.
  std::vector<std::string> childSubsystems;
  // Nodes every device of the class also needs (e.g. /dev/nvidiactl).
  std::vector<std::string> extraNodes;
  // Shell patterns (fnmatch, FNM_PATHNAME) of which each must match one of a
  // device's own nodes for it to be Healthy ("/dev/intel-fpga-port.*").
  // Empty: any one node of its own will do.
  std::vector<std::string> requiredNodes;
  // USB sticks disconnect and come back with new IDs while their firmware boots;
  // such a class keeps a removed device Healthy for the grace window.
  bool reenumerates = false;
  bool preStartRequired = false;
  SlotPolicy slotPolicy = SlotPolicy::Pack;
  bool disabled = false;
};

struct Config {
  std::string resourceDomain = "kubeaccel.io";
  std::chrono::milliseconds graceWindow{3000};
  std::vector<DeviceClass> classes;

  const DeviceClass* findClass(const std::string& name) const;
  std::string resourceName(const DeviceClass& c) const { return resourceDomain + "/" + c.name; }
};

const char* toString(Mode m);

}  // namespace kubeaccel
