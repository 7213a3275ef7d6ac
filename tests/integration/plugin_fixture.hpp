#pragma once
// The fixture of the plugin's integration tests: a harness (testbed, kubelet
// stand-in, the real daemons) and the checks every test ends with.
#include <signal.h>

#include <gtest/gtest.h>

#include <chrono>
#include <iostream>
#include <map>
#include <string>

#include "plugin_harness.hpp"

namespace kubeaccel::testing {

using namespace std::chrono_literals;
using Resources = std::map<std::string, KubeletStandin::Resource>;

constexpr auto kWait = 10s;
const std::string kNcs2 = "kubeaccel.io/movidius-ncs2";
const std::string kCoral = "kubeaccel.io/coral-pcie";
const std::string kHailo = "kubeaccel.io/hailo8";
const std::string kCoralPcieSyspath = "/sys/devices/pci0000:00/0000:00:1c.0/0000:03:00.0";
const std::string kHailoSyspath = "/sys/devices/pci0000:00/0000:00:1c.4/0000:04:00.0";
const std::string kNcs2Syspath = "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-3";

class PluginTest : public ::testing::Test {
 protected:
  PluginHarness h;

  bool waitHealth(const std::string& resource, const std::string& id, const std::string& health) {
    return h.kubelet().waitFor([&](const Resources& rs) { return healthOf(rs, resource, id) == health; }, kWait);
  }
  std::string fastGrace() { return h.writeConfig(R"({"graceWindowMs": 300})"); }
  // The NCS2 class on the CPU backend (the built-in 'openvino' is not built
  // into the agent), so the agent serves its slots and they can be Healthy.
  std::string ncs2OnCpu(const std::string& extra = "") {
    return h.writeConfig(R"({)" + extra + R"("classes": [{"name": "movidius-ncs2", "mode": "agent",
      "backend": "opencv-cpu", "slots": 4, "reenumerates": true, "match": [
      {"subsystem": "usb", "vendor": "03e7", "product": "2485"},
      {"subsystem": "usb", "vendor": "03e7", "product": "f63b"}]}]})");
  }
  void startAgentAndPlugin(const std::string& config) {
    h.startAgent(config);
    h.startPlugin(config);
  }
  // Every test ends with a clean stop: exit 0 on SIGTERM and no sanitizer
  // report from the plugin process (make test-asan builds it instrumented).
  void TearDown() override {
    if (h.pluginRunning()) {
      EXPECT_EQ(h.stopPlugin(SIGTERM), 0) << "SIGTERM must exit 0";
    }
    if (h.agentRunning()) {
      EXPECT_EQ(h.stopAgent(SIGTERM), 0) << "the agent's SIGTERM must exit 0";
    }
    std::string log = h.pluginLog() + h.agentLog();
    for (const char* report : {"AddressSanitizer", "LeakSanitizer", "runtime error:", "UndefinedBehaviorSanitizer"})
      EXPECT_EQ(log.find(report), std::string::npos) << "sanitizer report in the plugin's log: " << report;
    if (HasFailure())
      std::cerr << "---- plugin log ----\n" << h.pluginLog() << "---- agent log ----\n" << h.agentLog() << "----\n";
  }
};

}  // namespace kubeaccel::testing
