#include <gtest/gtest.h>

#include "config/config_loader.hpp"
#include "discovery/device_facts.hpp"
#include "discovery/identity.hpp"
#include "discovery/node_requirements.hpp"

namespace kubeaccel {
namespace {

DeviceFacts usb(const std::string& vendor, const std::string& product, const std::string& devtype = "usb_device") {
  DeviceFacts f;
  f.subsystem = "usb";
  f.devtype = devtype;
  f.vendor = vendor;
  f.product = product;
  return f;
}

DeviceFacts pci(const std::string& vendor, const std::string& device, const std::string& cls = "120000") {
  DeviceFacts f;
  f.subsystem = "pci";
  f.vendor = vendor;
  f.device = device;
  f.pciClass = cls;
  return f;
}

std::string classOf(const Config& c, const DeviceFacts& f) {
  const DeviceClass* cls = classify(c, f);
  return cls ? cls->name : "";
}

TEST(Matching, BuiltinCatalogClassifiesKnownIds) {
  Config c = parseConfig("{}");
  EXPECT_EQ(classOf(c, usb("03e7", "2150")), "movidius-ncs");
  EXPECT_EQ(classOf(c, usb("03e7", "2485")), "movidius-ncs2");
  EXPECT_EQ(classOf(c, usb("03e7", "f63b")), "movidius-ncs2");
  EXPECT_EQ(classOf(c, usb("1a6e", "089a")), "coral-usb");
  EXPECT_EQ(classOf(c, usb("18d1", "9302")), "coral-usb");
  EXPECT_EQ(classOf(c, pci("1ac1", "089a")), "coral-pcie");
  EXPECT_EQ(classOf(c, pci("1e60", "2864")), "hailo8");
  EXPECT_EQ(classOf(c, pci("8086", "09c4")), "intel-fpga-pac");
  EXPECT_EQ(classOf(c, pci("10ee", "5001")), "xilinx-alveo");
  EXPECT_EQ(classOf(c, pci("10de", "20b0", "030200")), "nvidia-gpu");
  EXPECT_EQ(classOf(c, pci("10de", "2204", "030000")), "nvidia-gpu");
  EXPECT_EQ(classOf(c, pci("10de", "10f0", "040300")), "");  // an NVIDIA audio function
  DeviceFacts accel;
  accel.subsystem = "accel";
  EXPECT_EQ(classOf(c, accel), "accel");
}

TEST(Matching, OnlyWholeUsbDevices) {
  Config c = parseConfig("{}");
  EXPECT_EQ(classOf(c, usb("03e7", "2485", "usb_interface")), "");
  EXPECT_EQ(classOf(c, usb("1d6b", "0002")), "");  // root hub
}

TEST(Matching, EveryKeyOfAnAlternativeMustHold) {
  MatchRule r;
  r.subsystem = "pci";
  r.vendor = "10de";
  r.pciClass = "0302";
  r.attributes["numa_node"] = "1";
  r.properties["DRIVER"] = "nvidia";
  DeviceFacts f = pci("10de", "20b0", "030200");
  f.attribute = [](const std::string& k) -> std::optional<std::string> {
    return k == "numa_node" ? std::optional<std::string>("1") : std::nullopt;
  };
  f.property = [](const std::string& k) -> std::optional<std::string> {
    return k == "DRIVER" ? std::optional<std::string>("nvidia") : std::nullopt;
  };
  EXPECT_TRUE(matches(r, f));
  r.properties["DRIVER"] = "nouveau";
  EXPECT_FALSE(matches(r, f));
  r.properties.clear();
  r.attributes["numa_node"] = "0";
  EXPECT_FALSE(matches(r, f));
  r.attributes["missing"] = "x";
  EXPECT_FALSE(matches(r, f));
}

TEST(Matching, SerialRule) {
  MatchRule r;
  r.subsystem = "usb";
  r.serial = "ABC";
  DeviceFacts f = usb("03e7", "2485");
  EXPECT_FALSE(matches(r, f));
  f.serial = "ABC";
  EXPECT_TRUE(matches(r, f));
}

TEST(Matching, NormalizeHex) {
  EXPECT_EQ(normalizeHex("0x1AC1\n"), "1ac1");
  EXPECT_EQ(normalizeHex("03E7"), "03e7");
}

Device usbAt(const std::string& socket, const std::string& serial) {
  Device d;
  d.subsystem = "usb";
  d.serial = serial;
  d.portKey = socket;
  return d;
}

TEST(Identity, UsbIsNamedByItsSocketAndPciByItsAddress) {
  EXPECT_EQ(stableId(usbAt("1-2.3", "1234ABCD")), "usb-1-2.3");
  Device pciDev;
  pciDev.subsystem = "pci";
  pciDev.portKey = "0000:3b:00.0";
  EXPECT_EQ(stableId(pciDev), "0000-3b-00.0");
}

// Issue 8, case 2: an ID is a function of the device and where it sits.
// Duplicate, missing and changing serials give the same IDs, whatever else
// is plugged in and in whatever order.
TEST(Identity, SerialsNeverNameADevice) {
  // Cheap FT232R clones all report A50285BI; unbooted NCS2s all report 03e72485.
  EXPECT_EQ(stableId(usbAt("1-7", "A50285BI")), "usb-1-7");
  EXPECT_EQ(stableId(usbAt("1-8", "A50285BI")), "usb-1-8");
  EXPECT_EQ(stableId(usbAt("1-7", "")), "usb-1-7") << "a missing serial changes nothing";
  EXPECT_EQ(stableId(usbAt("1-3", "03e72485")), stableId(usbAt("1-3", "1841E1C00A7B3D00")))
      << "a serial that changes with the firmware changes nothing";
}

TEST(Identity, PortPathOfAPortDevice) {
  EXPECT_EQ(usbPortPathOfPortName("usb1-port3"), "1-3");
  EXPECT_EQ(usbPortPathOfPortName("usb12-port10"), "12-10");
  EXPECT_EQ(usbPortPathOfPortName("1-6-port4"), "1-6.4");
  EXPECT_EQ(usbPortPathOfPortName("2-2.1-port3"), "2-2.1.3");
  for (const char* bad : {"", "usb1", "usb1-port", "usbx-port1", "-port1", "usb1-portx", "x-port2", "1-0:1.0"})
    EXPECT_FALSE(usbPortPathOfPortName(bad)) << bad;
}

// Issue 8, case 1: the two halves of one socket name it by its USB 2 half
// (the lower bus), whichever half the device is on.
TEST(Identity, ASocketIsNamedByItsUsb2Half) {
  EXPECT_EQ(usbSocketPath("1-3", "2-1"), "1-3");
  EXPECT_EQ(usbSocketPath("2-1", "1-3"), "1-3");
  EXPECT_EQ(usbSocketPath("2-2.4", "1-6.4"), "1-6.4");
  EXPECT_EQ(usbSocketPath("1-6.4", "2-2.4"), "1-6.4");
  EXPECT_EQ(usbSocketPath("10-1", "9-4"), "9-4") << "bus numbers compare as numbers";
  EXPECT_EQ(usbSocketPath("1-7", std::nullopt), "1-7") << "a port without a peer names itself";
}

TEST(Identity, FilenameSafe) {
  EXPECT_EQ(filenameSafe("a/b c:d"), "a-b-c-d");
  EXPECT_EQ(filenameSafe(".."), "_..");
  EXPECT_EQ(filenameSafe(""), "_");
  EXPECT_EQ(filenameSafe("ok-1.2_3"), "ok-1.2_3");
}

// Issue 8, case 3: a device lacking the nodes its class hands to containers.
TEST(NodeRequirements, EveryRequiredPatternNeedsANode) {
  DeviceClass pac;
  pac.requiredNodes = {"/dev/intel-fpga-fme.*", "/dev/intel-fpga-port.*"};
  EXPECT_EQ(missingNodes({"/dev/intel-fpga-fme.0", "/dev/intel-fpga-port.0"}, pac), "");
  EXPECT_EQ(missingNodes({"/dev/intel-fpga-fme.0"}, pac), "no device node matching /dev/intel-fpga-port.*");
  EXPECT_EQ(missingNodes({}, pac), "no device node");
  DeviceClass alveo;
  alveo.requiredNodes = {"/dev/xclmgmt*", "/dev/dri/renderD*"};
  EXPECT_EQ(missingNodes({"/dev/xclmgmt44800"}, alveo), "no device node matching /dev/dri/renderD*");
  EXPECT_EQ(missingNodes({"/dev/dri/card1", "/dev/xclmgmt44800"}, alveo), "no device node matching /dev/dri/renderD*");
  DeviceClass gpu;
  gpu.requiredNodes = {"/dev/nvidia[0-9]*"};
  EXPECT_EQ(missingNodes({"/dev/nvidia-uvm"}, gpu), "no device node matching /dev/nvidia[0-9]*");
  EXPECT_EQ(missingNodes({"/dev/nvidia3"}, gpu), "");
  DeviceClass any;  // no patterns: one node of its own will do
  EXPECT_EQ(missingNodes({"/dev/bus/usb/001/004"}, any), "");
  EXPECT_EQ(missingNodes({}, any), "no device node");
  DeviceClass star;
  star.requiredNodes = {"/dev/*"};
  EXPECT_EQ(missingNodes({"/dev/dri/card0"}, star), "no device node matching /dev/*") << "* stays in one directory";
}

}  // namespace
}  // namespace kubeaccel
