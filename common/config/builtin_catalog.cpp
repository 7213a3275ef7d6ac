// The built-in catalog. It is the same document format admins write, so the
// one parser and validator serve both.
#include "config/config_loader.hpp"

namespace kubeaccel {

const std::string& builtinCatalogJson() {
  static const std::string doc = R"JSON({
  "resourceDomain": "kubeaccel.io",
  "graceWindowMs": 3000,
  "classes": [
    { "name": "movidius-ncs",
      "match": [ {"subsystem": "usb", "vendor": "03e7", "product": "2150"} ],
      "mode": "agent", "slots": 2, "backend": "openvino", "reenumerates": true },
    { "name": "movidius-ncs2",
      "match": [ {"subsystem": "usb", "vendor": "03e7", "product": "2485"},
                 {"subsystem": "usb", "vendor": "03e7", "product": "f63b"} ],
      "mode": "agent", "slots": 4, "backend": "openvino", "reenumerates": true },
    { "name": "coral-usb",
      "match": [ {"subsystem": "usb", "vendor": "1a6e", "product": "089a"},
                 {"subsystem": "usb", "vendor": "18d1", "product": "9302"} ],
      "mode": "agent", "slots": 4, "backend": "edgetpu", "reenumerates": true },
    { "name": "coral-pcie",
      "match": [ {"subsystem": "pci", "vendor": "1ac1", "device": "089a"} ],
      "nodes": {"childSubsystems": ["apex"], "required": ["/dev/apex_*"]},
      "mode": "device" },
    { "name": "hailo8",
      "match": [ {"subsystem": "pci", "vendor": "1e60", "device": "2864"} ],
      "nodes": {"required": ["/dev/hailo*"]},
      "mode": "device" },
    { "name": "intel-fpga-pac",
      "match": [ {"subsystem": "pci", "vendor": "8086", "device": "09c4"} ],
      "nodes": {"required": ["/dev/intel-fpga-fme.*", "/dev/intel-fpga-port.*"]},
      "mode": "device" },
    { "name": "xilinx-alveo",
      "match": [ {"subsystem": "pci", "vendor": "10ee", "device": "5000"},
                 {"subsystem": "pci", "vendor": "10ee", "device": "5001"},
                 {"subsystem": "pci", "vendor": "10ee", "device": "5004"},
                 {"subsystem": "pci", "vendor": "10ee", "device": "5005"} ],
      "nodes": {"required": ["/dev/xclmgmt*", "/dev/dri/renderD*"]},
      "mode": "device" },
    { "name": "nvidia-gpu",
      "match": [ {"subsystem": "pci", "vendor": "10de", "class": "0302"},
                 {"subsystem": "pci", "vendor": "10de", "class": "0300"} ],
      "nodes": {"extra": ["/dev/nvidiactl", "/dev/nvidia-uvm"], "required": ["/dev/nvidia[0-9]*"]},
      "mode": "device" },
    { "name": "accel",
      "match": [ {"subsystem": "accel"} ],
      "mode": "device" }
  ]
})JSON";
  return doc;
}

}  // namespace kubeaccel
