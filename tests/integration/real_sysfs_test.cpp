// Discovery on this machine's real sysfs, with no umockdev: a user class made
// from a PCI device that is actually present must be found by `kubeaccel
// devices` and advertised by the plugin to the kubelet stand-in.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "plugin_harness.hpp"

namespace kubeaccel::testing {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

std::string readHex(const fs::path& p) {
  std::ifstream in(p);
  std::string v;
  in >> v;
  if (v.rfind("0x", 0) == 0) v = v.substr(2);
  return v;
}

struct PciDevice {
  std::string address, vendor, device;
};

std::vector<PciDevice> pciDevices() {
  std::vector<PciDevice> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/sys/bus/pci/devices", ec))
    out.push_back({e.path().filename().string(), readHex(e.path() / "vendor"), readHex(e.path() / "device")});
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.address < b.address; });
  return out;
}

TEST(RealSysfs, PluginDiscoversAPciDeviceThatIsPresent) {
  auto all = pciDevices();
  if (all.empty()) GTEST_SKIP() << "this machine has no PCI devices in /sys/bus/pci/devices";
  const PciDevice& pick = all.front();
  std::vector<std::string> expected;  // every function with the same IDs matches too
  for (const auto& d : all)
    if (d.vendor == pick.vendor && d.device == pick.device) {
      std::string id = d.address;
      std::replace(id.begin(), id.end(), ':', '-');
      expected.push_back(id);
    }

  PluginHarness h(PluginHarness::Sysfs::Real);
  std::string config = h.writeConfig(R"({"builtin": false, "classes": [{"name": "real-pci", "match": [
    {"subsystem": "pci", "vendor": ")" + pick.vendor + R"(", "device": ")" + pick.device + R"("}]}]})");

  std::string out, err;
  ASSERT_EQ(h.run({KUBEACCEL_CLI_BIN, "devices", "--json", "--config", config}, &out, &err), 0) << err;
  std::vector<std::string> listed;
  nlohmann::json doc = nlohmann::json::parse(out);
  for (const auto& d : doc["devices"]) {
    listed.push_back(d["id"]);
    EXPECT_EQ(d["resource"], "kubeaccel.io/real-pci");
    EXPECT_TRUE(d["numaNode"].is_number_integer());
  }
  std::sort(listed.begin(), listed.end());
  EXPECT_EQ(listed, expected) << "picked " << pick.address << " " << pick.vendor << ":" << pick.device << "\n"
                              << out << err;

  h.startPlugin(config);
  ASSERT_TRUE(h.kubelet().waitForRegistrations("kubeaccel.io/real-pci", 1, 10s)) << h.pluginLog();
  ASSERT_TRUE(h.kubelet().waitFor([&](const auto& rs) {
    return rs.at("kubeaccel.io/real-pci").devices.size() == expected.size();
  }, 10s));
  auto resources = h.kubelet().resources();
  for (const auto& d : resources["kubeaccel.io/real-pci"].devices) {
    EXPECT_EQ(d.health, "Healthy");
    EXPECT_TRUE(std::find(expected.begin(), expected.end(), d.id) != expected.end()) << d.id;
  }
  EXPECT_EQ(h.stopPlugin(SIGTERM), 0);
}

}  // namespace
}  // namespace kubeaccel::testing
