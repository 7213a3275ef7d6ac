#include <gtest/gtest.h>

#include "config/config_error.hpp"
#include "config/config_loader.hpp"

namespace kubeaccel {
namespace {

std::string errorOf(const std::string& doc) {
  try {
    parseConfig(doc);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(Config, BuiltinCatalogHasEveryClass) {
  Config c = parseConfig("{}");
  for (const char* name : {"movidius-ncs", "movidius-ncs2", "coral-usb", "coral-pcie", "hailo8", "intel-fpga-pac",
                           "xilinx-alveo", "nvidia-gpu", "accel"})
    EXPECT_NE(c.findClass(name), nullptr) << name;
  EXPECT_EQ(c.resourceDomain, "kubeaccel.io");
  EXPECT_EQ(c.graceWindow.count(), 3000);
  const DeviceClass* ncs2 = c.findClass("movidius-ncs2");
  ASSERT_NE(ncs2, nullptr);
  EXPECT_EQ(ncs2->mode, Mode::Agent);
  EXPECT_TRUE(ncs2->reenumerates);
  EXPECT_EQ(ncs2->match.size(), 2u);
  EXPECT_EQ(c.findClass("coral-pcie")->mode, Mode::Device);
  EXPECT_EQ(c.findClass("coral-pcie")->childSubsystems, std::vector<std::string>{"apex"});
}

TEST(Config, DesignExampleParses) {
  Config c = parseConfig(R"({
    "resourceDomain": "kubeaccel.io",
    "classes": [
      { "name": "movidius-ncs2",
        "match": [ {"subsystem": "usb", "vendor": "03e7", "product": "2485"},
                   {"subsystem": "usb", "vendor": "03e7", "product": "f63b"} ],
        "mode": "agent", "slots": 4, "backend": "opencv-cpu" },
      { "name": "coral-pcie",
        "match": [ {"subsystem": "pci", "vendor": "1ac1", "device": "089a"} ],
        "nodes": {"childSubsystems": ["apex"]},
        "mode": "device" } ] })");
  const DeviceClass* ncs2 = c.findClass("movidius-ncs2");
  ASSERT_NE(ncs2, nullptr);
  EXPECT_EQ(ncs2->backend, "opencv-cpu");  // replaced the built-in
  EXPECT_EQ(ncs2->slots, 4);
  EXPECT_EQ(c.resourceName(*ncs2), "kubeaccel.io/movidius-ncs2");
}

TEST(Config, OverrideDisableAndEmptyCatalog) {
  Config c = parseConfig(R"({"classes": [{"name": "hailo8", "disabled": true},
    {"name": "my-card", "match": [{"subsystem": "pci", "vendor": "abcd", "class": "12"}]}]})");
  EXPECT_EQ(c.findClass("hailo8"), nullptr);
  ASSERT_NE(c.findClass("my-card"), nullptr);
  EXPECT_EQ(*c.findClass("my-card")->match[0].pciClass, "12");
  EXPECT_NE(c.findClass("coral-usb"), nullptr);

  Config empty = parseConfig(R"({"builtin": false})");
  EXPECT_TRUE(empty.classes.empty());
}

TEST(Config, PropertiesAndAttributes) {
  Config c = parseConfig(R"({"builtin": false, "classes": [{"name": "npu", "match": [
    {"subsystem": "accel", "properties": {"ID_MODEL": "npu"}, "attributes": {"device/vendor": "0x8086"}}]}]})");
  EXPECT_EQ(c.classes[0].match[0].properties.at("ID_MODEL"), "npu");
  EXPECT_EQ(c.classes[0].match[0].attributes.at("device/vendor"), "0x8086");
}

TEST(Config, ErrorsNameTheKey) {
  EXPECT_EQ(errorOf(R"({"classes": [{"name": "a", "match": [{"subsystem": "usb"}]}, {"name": "b", "match": [{"subsystem": "usb"}]},
      {"name": "c", "match": [{"subsystem": "usb", "vendor": "xyz"}]}]})"),
            "config: classes[2].match[0].vendor: expected 4 lower-case hex digits, got 'xyz'");
  EXPECT_EQ(errorOf(R"({"clases": []})"), "config: clases: unknown key");
  EXPECT_EQ(errorOf(R"({"classes": [{"name": "a", "match": [{"subsystem": "usb"}], "colour": 1}]})"),
            "config: classes[0].colour: unknown key");
  EXPECT_EQ(errorOf(R"({"classes": [{"name": "a", "match": [{"subsystem": "usb"}], "mode": "shared"}]})"),
            "config: classes[0].mode: expected one of agent, device, got 'shared'");
  EXPECT_EQ(errorOf(R"({"classes": [{"name": "a", "mode": "agent", "backend": "x", "slots": 0,
      "match": [{"subsystem": "usb"}]}]})"),
            "config: classes[0].slots: expected an integer from 1 to 64, got 0");
  EXPECT_EQ(errorOf(R"({"classes": [{"name": "a", "slots": 2, "match": [{"subsystem": "usb"}]}]})"),
            "config: classes[0].slots: slots apply to agent mode only");
  EXPECT_EQ(errorOf(R"({"classes": [{"name": "a", "mode": "agent", "match": [{"subsystem": "usb"}]}]})"),
            "config: classes[0]: agent mode needs a 'backend'");
  EXPECT_EQ(errorOf(R"({"classes": [{"name": "Bad_Name", "match": [{"subsystem": "usb"}]}]})"),
            "config: classes[0].name: expected a DNS label (lower-case letters, digits, '-'), got 'Bad_Name'");
  EXPECT_EQ(errorOf(R"({"classes": [{"name": "a", "match": []}]})"),
            "config: classes[0].match: expected at least one alternative");
  EXPECT_EQ(errorOf(R"({"classes": [{"name": "a", "match": [{"vendor": "abcd"}]}]})"),
            "config: classes[0].match[0]: missing key 'subsystem'");
  EXPECT_EQ(errorOf(R"({"classes": [{"name": "a", "match": [{"subsystem": "pci", "product": "abcd"}]}]})"),
            "config: classes[0].match[0].product: only USB devices have a product ID; use 'device' for PCI");
  EXPECT_EQ(errorOf(R"({"classes": [{"name": "a", "match": [{"subsystem": "usb"}]}, {"name": "a", "match": [{"subsystem": "usb"}]}]})"),
            "config: classes[1].name: duplicate class 'a'");
  EXPECT_EQ(errorOf(R"({"graceWindowMs": "3s"})"), "config: graceWindowMs: expected an integer, got string \"3s\"");
  EXPECT_EQ(errorOf(R"({"classes": [{"name": "a", "match": [{"subsystem": "usb"}], "nodes": {"extra": ["/etc/passwd"]}}]})"),
            "config: classes[0].nodes.extra[0]: expected a path under /dev/, got '/etc/passwd'");
  EXPECT_EQ(errorOf(R"({"classes": [{"name": "a", "match": [{"subsystem": "usb"}], "nodes": {"required": ["/dev/x*", "sda"]}}]})"),
            "config: classes[0].nodes.required[1]: expected a pattern under /dev/, got 'sda'");
  EXPECT_EQ(errorOf("[1, 2]"), "config: expected an object, got array [1,2]");
  EXPECT_NE(errorOf("{\"classes\": [").find("config: invalid JSON: parse error at line 1"), std::string::npos)
      << errorOf("{\"classes\": [");
}

TEST(Config, MissingFileIsAConfigError) {
  try {
    loadConfig("/nonexistent/kubeaccel.json");
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), "config /nonexistent/kubeaccel.json: cannot read: No such file or directory");
  }
}

}  // namespace
}  // namespace kubeaccel
