#include <gtest/gtest.h>

#include "config/config_loader.hpp"
#include "discovery/device_facts.hpp"
#include "discovery/identity.hpp"

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

TEST(Identity, SerialThenPortThenPciAddress) {
  Device usbDev;
  usbDev.subsystem = "usb";
  usbDev.serial = "1234ABCD";
  usbDev.portKey = "1-2.3";
  EXPECT_EQ(stableId(usbDev, true), "1234ABCD");
  EXPECT_EQ(stableId(usbDev, false), "usb-1-2.3");
  Device pciDev;
  pciDev.subsystem = "pci";
  pciDev.portKey = "0000:3b:00.0";
  EXPECT_EQ(stableId(pciDev, false), "0000-3b-00.0");
}

TEST(Identity, AStickThatReenumeratesIsNamedByItsPort) {
  Device stick;
  stick.subsystem = "usb";
  stick.serial = "1841E1C00A7B3D00";  // a booted NCS2's serial; unbooted it says 03e72485
  stick.portKey = "1-3";
  stick.serialNamesIt = false;
  EXPECT_EQ(stableId(stick, true), "usb-1-3");
}

TEST(Identity, ASharedSerialNamesNeitherDevice) {
  // Unbooted NCS2s all report serial 03e72485: two of them are told apart by port.
  auto stick = [](const std::string& serial, const std::string& port) {
    Device d;
    d.subsystem = "usb";
    d.serial = serial;
    d.portKey = port;
    return d;
  };
  std::vector<Device> devices = {stick("03e72485", "1-3"), stick("03e72485", "1-2"), stick("1841E1C0", "1-4"),
                                 stick("", "2-1")};
  assignIds(devices);
  EXPECT_EQ(devices[0].id, "usb-1-3");
  EXPECT_EQ(devices[1].id, "usb-1-2");
  EXPECT_EQ(devices[2].id, "1841E1C0");
  EXPECT_EQ(devices[3].id, "usb-2-1");
}

TEST(Identity, FilenameSafe) {
  EXPECT_EQ(filenameSafe("a/b c:d"), "a-b-c-d");
  EXPECT_EQ(filenameSafe(".."), "_..");
  EXPECT_EQ(filenameSafe(""), "_");
  EXPECT_EQ(filenameSafe("ok-1.2_3"), "ok-1.2_3");
}

}  // namespace
}  // namespace kubeaccel
