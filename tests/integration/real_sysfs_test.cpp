// Discovery on this machine's real sysfs, with no umockdev: a user class made
// from PCI devices that are actually present must be found by `kubeaccel
// devices` and advertised by the plugin to the kubelet stand-in.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

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
  bool hasNode = false;  // a descendant in sysfs has a device node ("dev")
  bool virtualFunction = false;
};

bool hasDeviceNode(const fs::path& dir) {
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (it->path().filename() == "dev" && it.depth() > 0) return true;
  return false;
}

std::vector<PciDevice> pciDevices() {
  std::vector<PciDevice> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/sys/bus/pci/devices", ec)) {
    fs::path dir = fs::canonical(e.path(), ec);
    out.push_back({e.path().filename().string(), readHex(dir / "vendor"), readHex(dir / "device"), hasDeviceNode(dir),
                   fs::exists(dir / "physfn")});
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.address < b.address; });
  return out;
}

// What the plugin should advertise for a class matching these IDs: one device
// per card (functions at one domain:bus:device), named by its lowest function,
// Healthy when some function has a device node.
std::map<std::string, std::string> expectedHealth(const std::vector<PciDevice>& all,
                                                  const std::set<std::pair<std::string, std::string>>& ids) {
  std::map<std::string, std::pair<std::string, bool>> cards;  // card -> (lowest address, has a node)
  for (const auto& d : all) {
    if (!ids.count({d.vendor, d.device})) continue;
    std::string card = d.virtualFunction ? d.address : d.address.substr(0, d.address.rfind('.'));
    auto [it, fresh] = cards.emplace(card, std::pair{d.address, d.hasNode});
    if (!fresh) it->second.second |= d.hasNode;  // sorted: the first seen is the lowest
  }
  std::map<std::string, std::string> out;
  for (const auto& [card, v] : cards) {
    std::string id = v.first;
    std::replace(id.begin(), id.end(), ':', '-');
    out[id] = v.second ? "Healthy" : "Unhealthy";
  }
  return out;
}

// A class made of one PCI device with a device node and one without (when the
// machine has them): the first is advertised Healthy, the second Unhealthy.
TEST(RealSysfs, PluginDiscoversPciDevicesThatArePresent) {
  auto all = pciDevices();
  if (all.empty()) GTEST_SKIP() << "this machine has no PCI devices in /sys/bus/pci/devices";
  std::set<std::pair<std::string, std::string>> ids;
  for (bool node : {true, false})
    for (const auto& d : all)
      if (d.hasNode == node) {
        ids.insert({d.vendor, d.device});
        break;
      }
  auto expected = expectedHealth(all, ids);
  std::string match;
  for (const auto& [vendor, device] : ids)
    match += std::string(match.empty() ? "" : ", ") + R"({"subsystem": "pci", "vendor": ")" + vendor +
             R"(", "device": ")" + device + R"("})";

  PluginHarness h(PluginHarness::Sysfs::Real);
  std::string config = h.writeConfig(R"({"builtin": false, "classes": [{"name": "real-pci", "match": [)" + match +
                                     R"(]}]})");

  std::string out, err;
  ASSERT_EQ(h.run({KUBEACCEL_CLI_BIN, "devices", "--json", "--config", config}, &out, &err), 0) << err;
  std::map<std::string, std::string> listed;
  nlohmann::json doc = nlohmann::json::parse(out);
  for (const auto& d : doc["devices"]) {
    listed[d["id"]] = d["health"];
    EXPECT_EQ(d["resource"], "kubeaccel.io/real-pci");
    EXPECT_TRUE(d["numaNode"].is_number_integer());
    EXPECT_EQ(d.contains("problem"), d["health"] == "Unhealthy") << d.dump();
  }
  EXPECT_EQ(listed, expected) << "class " << match << "\n" << out << err;

  h.startPlugin(config);
  ASSERT_TRUE(h.kubelet().waitForRegistrations("kubeaccel.io/real-pci", 1, 10s)) << h.pluginLog();
  ASSERT_TRUE(h.kubelet().waitFor([&](const auto& rs) {
    std::map<std::string, std::string> advertised;
    for (const auto& d : rs.at("kubeaccel.io/real-pci").devices) advertised[d.id] = d.health;
    return advertised == expected;
  }, 10s)) << h.pluginLog();
  EXPECT_EQ(h.stopPlugin(SIGTERM), 0);
}

}  // namespace
}  // namespace kubeaccel::testing
