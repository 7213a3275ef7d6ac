// The real kubeaccel-plugin against umockdev testbeds and the kubelet stand-in.
#include <signal.h>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "inference/grpc_service.grpc.pb.h"
#include "plugin_fixture.hpp"

namespace kubeaccel::testing {
namespace {

TEST_F(PluginTest, RegistersOneResourcePerClassWithItsDevices) {
  h.plug("movidius-ncs2-unbooted.umockdev");
  h.plug("coral-pcie.umockdev");
  h.plug("unrelated.umockdev");
  startAgentAndPlugin(ncs2OnCpu());
  ASSERT_TRUE(h.kubelet().waitForRegistrations(kNcs2, 1, kWait));
  ASSERT_TRUE(h.kubelet().waitForRegistrations(kCoral, 1, kWait));
  ASSERT_TRUE(h.kubelet().waitFor([](const Resources& rs) {
    if (idsOf(rs, kNcs2).size() != 4 || idsOf(rs, kCoral).size() != 1) return false;
    for (int k = 0; k < 4; ++k)
      if (healthOf(rs, kNcs2, "usb-1-3-s" + std::to_string(k)) != "Healthy") return false;
    return true;
  }, kWait));

  Resources rs = h.kubelet().resources();
  EXPECT_EQ(rs.size(), 2u) << "only classes the node has are registered";
  EXPECT_TRUE(h.kubelet().registrationErrors().empty());
  EXPECT_TRUE(rs[kNcs2].options.get_preferred_allocation_available());
  EXPECT_FALSE(rs[kNcs2].options.pre_start_required());
  EXPECT_EQ(rs[kNcs2].endpoint, "kubeaccel-movidius-ncs2.sock");
  // The unbooted NCS2's serial is unique on this node, so it names the device.
  EXPECT_EQ(idsOf(rs, kNcs2), (std::vector<std::string>{"usb-1-3-s0", "usb-1-3-s1", "usb-1-3-s2", "usb-1-3-s3"}));
  for (const auto& d : rs[kNcs2].devices) {
    EXPECT_EQ(d.health, "Healthy");
    EXPECT_EQ(d.numaNodes, std::vector<int64_t>{0});
  }
  ASSERT_EQ(rs[kCoral].devices.size(), 1u);
  EXPECT_EQ(rs[kCoral].devices[0].id, "0000-03-00.0");
  EXPECT_EQ(rs[kCoral].devices[0].numaNodes, std::vector<int64_t>{0});
  EXPECT_TRUE(h.waitForLog("registered kubeaccel.io/movidius-ncs2 with the kubelet"));
}

TEST_F(PluginTest, HotplugReachesListAndWatch) {
  h.plug("coral-pcie.umockdev");
  h.startPlugin(fastGrace());
  ASSERT_TRUE(h.kubelet().waitForRegistrations(kCoral, 1, kWait));

  h.plug("hailo8.umockdev");
  ASSERT_TRUE(h.kubelet().waitForRegistrations(kHailo, 1, kWait)) << "a new class registers on its first device";
  ASSERT_TRUE(waitHealth(kHailo, "0000-04-00.0", "Healthy"));

  // A PCI card that goes turns Unhealthy at once, and is dropped after the window.
  h.unplug(kHailoSyspath);
  ASSERT_TRUE(waitHealth(kHailo, "0000-04-00.0", "Unhealthy"));
  ASSERT_TRUE(h.kubelet().waitFor([](const Resources& rs) { return idsOf(rs, kHailo).empty(); }, kWait));
  EXPECT_EQ(healthOf(h.kubelet().resources(), kCoral, "0000-03-00.0"), "Healthy") << "other devices untouched";
  EXPECT_TRUE(h.waitForLog("device added: hailo8 0000-04-00.0"));
  EXPECT_TRUE(h.waitForLog("device removed: hailo8 0000-04-00.0"));
  EXPECT_TRUE(h.waitForLog("kubeaccel.io/hailo8: device 0000-04-00.0 dropped"));
}

TEST_F(PluginTest, ADeviceThatComesBackIsHealthyAgain) {
  h.plug("coral-pcie.umockdev");
  h.startPlugin(h.writeConfig(R"({"graceWindowMs": 60000})"));
  ASSERT_TRUE(waitHealth(kCoral, "0000-03-00.0", "Healthy"));
  h.unplug(kCoralPcieSyspath);
  ASSERT_TRUE(waitHealth(kCoral, "0000-03-00.0", "Unhealthy"));
  h.plug("coral-pcie.umockdev");
  ASSERT_TRUE(waitHealth(kCoral, "0000-03-00.0", "Healthy"));
  EXPECT_TRUE(h.waitForLog("device 0000-03-00.0 is now Healthy"));
}

TEST_F(PluginTest, ReenumeratingStickKeepsItsIdAndHealth) {
  h.plug("movidius-ncs2-unbooted.umockdev");
  startAgentAndPlugin(ncs2OnCpu());  // 3 s window, as built in
  for (int k = 0; k < 4; ++k) ASSERT_TRUE(waitHealth(kNcs2, "usb-1-3-s" + std::to_string(k), "Healthy"));
  int updatesBefore = h.kubelet().resources()[kNcs2].updates;
  // Firmware boot: 2485 leaves, f63b arrives in the same port with a new serial.
  h.unplug(kNcs2Syspath);
  h.plug("movidius-ncs2-booted.umockdev");
  std::this_thread::sleep_for(300ms);  // let any (wrong) message arrive
  Resources rs = h.kubelet().resources();
  EXPECT_EQ(idsOf(rs, kNcs2), (std::vector<std::string>{"usb-1-3-s0", "usb-1-3-s1", "usb-1-3-s2", "usb-1-3-s3"}));
  EXPECT_EQ(healthOf(rs, kNcs2, "usb-1-3-s0"), "Healthy");
  EXPECT_EQ(rs[kNcs2].updates, updatesBefore) << "nothing the kubelet sees changed";
}

// A storm of 100 uevents in one second (25 unplug/plug cycles of a card and
// its apex child): it ends in the right state, and the kubelet gets one
// message per change it can see, not one per event. (umockdev delivers
// uevents over Unix datagram sockets with a queue of ~10, so a faster burst
// would overflow the simulator, not the plugin.)
TEST_F(PluginTest, HotplugStormEndsRightWithOneMessagePerChange) {
  h.plug("coral-pcie.umockdev");
  h.startPlugin(h.writeConfig(R"({"graceWindowMs": 60000})"));
  ASSERT_TRUE(waitHealth(kCoral, "0000-03-00.0", "Healthy"));
  int before = h.kubelet().resources()[kCoral].updates;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 25; ++i) {
    h.unplug(kCoralPcieSyspath);  // 2 events: the apex child, then the card
    std::this_thread::sleep_for(5ms);
    h.plug("coral-pcie.umockdev");  // 2 events: the card, then its child
    std::this_thread::sleep_for(5ms);
  }
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  std::this_thread::sleep_for(200ms);
  auto r = h.kubelet().resources()[kCoral];
  EXPECT_EQ(healthOf(h.kubelet().resources(), kCoral, "0000-03-00.0"), "Healthy");
  ASSERT_EQ(r.devices.size(), 1u);
  int messages = r.updates - before;
  std::cout << "100 events in " << took.count() << " ms: " << messages
            << " ListAndWatch messages for 50 changes of health\n";
  EXPECT_LE(messages, 50) << "never more than one message per change the kubelet can see";
  EXPECT_EQ(messages % 2, 0) << "changes come in Unhealthy/Healthy pairs and it ends Healthy";
}

// A Coral USB loads its firmware: 1a6e:089a leaves, 18d1:9302 arrives in the
// same port (neither has a serial). Same IDs, still Healthy, nothing sent.
TEST_F(PluginTest, CoralUsbFirmwareLoadKeepsItsIdAndHealth) {
  const std::string coralUsb = "kubeaccel.io/coral-usb";
  h.plug("coral-usb-unbooted.umockdev");
  std::string config = h.writeConfig(R"({"classes": [{"name": "coral-usb", "mode": "agent", "backend": "opencv-cpu",
    "slots": 2, "reenumerates": true, "match": [{"subsystem": "usb", "vendor": "1a6e", "product": "089a"},
    {"subsystem": "usb", "vendor": "18d1", "product": "9302"}]}]})");
  startAgentAndPlugin(config);
  for (int k = 0; k < 2; ++k) ASSERT_TRUE(waitHealth(coralUsb, "usb-3-1-s" + std::to_string(k), "Healthy"));
  int updatesBefore = h.kubelet().resources()[coralUsb].updates;
  h.unplug("/sys/devices/pci0000:d7/0000:d7:00.0/0000:d8:00.0/usb3/3-1");
  h.plug("coral-usb-booted.umockdev");
  std::this_thread::sleep_for(300ms);
  Resources rs = h.kubelet().resources();
  EXPECT_EQ(idsOf(rs, coralUsb), (std::vector<std::string>{"usb-3-1-s0", "usb-3-1-s1"}));
  EXPECT_EQ(healthOf(rs, coralUsb, "usb-3-1-s1"), "Healthy");
  EXPECT_EQ(rs[coralUsb].updates, updatesBefore) << "nothing the kubelet sees changed";
  EXPECT_EQ(rs[coralUsb].devices[0].numaNodes, std::vector<int64_t>{1});
}

TEST_F(PluginTest, ReregistersAfterKubeletRestart) {
  h.plug("coral-pcie.umockdev");
  h.plug("movidius-ncs2-unbooted.umockdev");
  h.startPlugin("");
  ASSERT_TRUE(h.kubelet().waitForRegistrations(kCoral, 1, kWait));
  ASSERT_TRUE(h.kubelet().waitForRegistrations(kNcs2, 1, kWait));

  auto t0 = std::chrono::steady_clock::now();
  h.kubelet().restart();  // deletes the plugin sockets, then serves a new kubelet.sock
  ASSERT_TRUE(h.kubelet().waitForRegistrations(kCoral, 2, kWait));
  ASSERT_TRUE(h.kubelet().waitForRegistrations(kNcs2, 2, kWait));
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  std::cout << "re-registered both resources " << took.count() << " ms after the kubelet restart\n";
  ASSERT_TRUE(waitHealth(kCoral, "0000-03-00.0", "Healthy"));
  auto sockets = h.socketsInDevicePluginDir();
  EXPECT_EQ(sockets, (std::vector<std::string>{"kubeaccel-coral-pcie.sock", "kubeaccel-movidius-ncs2.sock",
                                               "kubelet.sock"}));
  // And it still answers on the new socket.
  v1beta1::AllocateResponse resp;
  EXPECT_TRUE(h.kubelet().allocate(kCoral, {"0000-03-00.0"}, &resp).ok());
}

TEST_F(PluginTest, RecreatesItsSocketWhenDeleted) {
  h.plug("coral-pcie.umockdev");
  h.startPlugin("");
  ASSERT_TRUE(h.kubelet().waitForRegistrations(kCoral, 1, kWait));
  ::unlink((h.devicePluginDir() + "/kubeaccel-coral-pcie.sock").c_str());
  ASSERT_TRUE(h.kubelet().waitForRegistrations(kCoral, 2, kWait));
  v1beta1::AllocateResponse resp;
  EXPECT_TRUE(h.kubelet().allocate(kCoral, {"0000-03-00.0"}, &resp).ok());
}

TEST_F(PluginTest, WaitsForTheKubeletThenRegisters) {
  h.kubelet().stop();
  h.plug("coral-pcie.umockdev");
  h.startPlugin("");
  std::this_thread::sleep_for(200ms);
  EXPECT_TRUE(h.kubelet().resources().empty());
  h.kubelet().start();
  ASSERT_TRUE(h.kubelet().waitForRegistrations(kCoral, 1, kWait));
}

TEST_F(PluginTest, RetriesAFailedRegistrationWithBackoff) {
  h.kubelet().failRegistrations(2);
  h.plug("coral-pcie.umockdev");
  h.startPlugin("");
  ASSERT_TRUE(h.kubelet().waitForRegistrations(kCoral, 1, kWait));
  EXPECT_TRUE(h.waitForLog("registering kubeaccel.io/coral-pcie failed: refused by test; retrying in 100 ms"));
  EXPECT_TRUE(h.waitForLog("registering kubeaccel.io/coral-pcie failed: refused by test; retrying in 200 ms"));
}

TEST_F(PluginTest, AllocateInAgentMode) {
  h.plug("movidius-ncs2-unbooted.umockdev");
  startAgentAndPlugin(ncs2OnCpu());
  ASSERT_TRUE(waitHealth(kNcs2, "usb-1-3-s1", "Healthy"));
  v1beta1::AllocateResponse resp;
  ASSERT_TRUE(h.kubelet().allocate(kNcs2, {"usb-1-3-s1"}, &resp).ok());
  ASSERT_EQ(resp.container_responses_size(), 1);
  const auto& c = resp.container_responses(0);
  ASSERT_EQ(c.mounts_size(), 2);  // the slot directory read-only, its shm/ read-write (issue 10)
  EXPECT_EQ(c.mounts(0).host_path(), h.agentDir() + "/movidius-ncs2/usb-1-3/s1");
  EXPECT_EQ(c.mounts(0).container_path(), "/run/kubeaccel");
  EXPECT_TRUE(c.mounts(0).read_only());
  EXPECT_EQ(c.mounts(1).host_path(), h.agentDir() + "/movidius-ncs2/usb-1-3/s1/shm");
  EXPECT_EQ(c.mounts(1).container_path(), "/run/kubeaccel/shm");
  EXPECT_FALSE(c.mounts(1).read_only());
  EXPECT_EQ(c.devices_size(), 0) << "an agent-mode pod gets no device node";
  EXPECT_EQ(c.envs().at("KUBEACCEL_INFERENCE_SOCKET"), "unix:///run/kubeaccel/inference.sock");
  EXPECT_EQ(c.envs().at("KUBEACCEL_DEVICE_ID"), "usb-1-3-s1");
  // Issue 10, section 5: the slot's CDI device, whose mounts carry nosuid, nodev and noexec.
  ASSERT_EQ(c.cdi_devices_size(), 1);
  EXPECT_EQ(c.cdi_devices(0).name(), "kubeaccel.io/movidius-ncs2=usb-1-3-s1");
  EXPECT_TRUE(h.waitForLog("kubeaccel.io/movidius-ncs2: allocated usb-1-3-s1"));
}

// An agent-mode slot is Healthy only while the agent answers ServerReady on
// its socket: Unhealthy while the agent is away, Healthy again when it is back.
TEST_F(PluginTest, AgentModeSlotsFollowTheAgent) {
  h.plug("movidius-ncs2-unbooted.umockdev");
  std::string config = ncs2OnCpu();
  h.startPlugin(config);
  ASSERT_TRUE(h.kubelet().waitForRegistrations(kNcs2, 1, kWait));
  ASSERT_TRUE(waitHealth(kNcs2, "usb-1-3-s0", "Unhealthy")) << "no agent yet";
  v1beta1::AllocateResponse resp;
  EXPECT_EQ(h.kubelet().allocate(kNcs2, {"usb-1-3-s0"}, &resp).error_code(), grpc::StatusCode::FAILED_PRECONDITION);

  h.startAgent(config);
  for (int k = 0; k < 4; ++k) ASSERT_TRUE(waitHealth(kNcs2, "usb-1-3-s" + std::to_string(k), "Healthy"));
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(h.stopAgent(SIGTERM), 0);
  ASSERT_TRUE(waitHealth(kNcs2, "usb-1-3-s2", "Unhealthy"));
  std::cout << "agent stopped -> Unhealthy in "
            << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count()
            << " ms\n";
  t0 = std::chrono::steady_clock::now();
  h.startAgent(config);
  for (int k = 0; k < 4; ++k) ASSERT_TRUE(waitHealth(kNcs2, "usb-1-3-s" + std::to_string(k), "Healthy"));
  std::cout << "agent restarted -> Healthy in "
            << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count()
            << " ms\n";
  EXPECT_TRUE(h.kubelet().allocate(kNcs2, {"usb-1-3-s0"}, &resp).ok());
}

// A class whose backend the agent lacks is served but never ready: Unhealthy.
TEST_F(PluginTest, SlotsOfAnUnavailableBackendStayUnhealthy) {
  h.plug("movidius-ncs2-unbooted.umockdev");
  h.startAgent("");  // the built-in NCS2 class names 'openvino'
  h.startPlugin("");
  ASSERT_TRUE(h.waitForAgentLog("backend 'openvino' (Intel Movidius) is not built into this agent"));
  ASSERT_TRUE(h.kubelet().waitForRegistrations(kNcs2, 1, kWait));
  std::this_thread::sleep_for(300ms);
  for (int k = 0; k < 4; ++k) EXPECT_EQ(healthOf(h.kubelet().resources(), kNcs2, "usb-1-3-s" + std::to_string(k)), "Unhealthy");
}

TEST_F(PluginTest, AllocateInDeviceMode) {
  h.plug("intel-fpga-pac.umockdev");
  h.startPlugin("");
  const std::string fpga = "kubeaccel.io/intel-fpga-pac";
  ASSERT_TRUE(waitHealth(fpga, "0000-5e-00.0", "Healthy"));
  v1beta1::AllocateResponse resp;
  ASSERT_TRUE(h.kubelet().allocate(fpga, {"0000-5e-00.0"}, &resp).ok());
  const auto& c = resp.container_responses(0);
  std::vector<std::string> nodes;
  for (const auto& spec : c.devices()) {
    EXPECT_EQ(spec.container_path(), spec.host_path());
    EXPECT_EQ(spec.permissions(), "rw");
    nodes.push_back(spec.host_path());
  }
  EXPECT_EQ(nodes, (std::vector<std::string>{"/dev/intel-fpga-fme.0", "/dev/intel-fpga-port.0"}));
  EXPECT_EQ(c.mounts_size(), 0);
  EXPECT_EQ(c.envs().at("KUBEACCEL_DEVICE_IDS"), "0000-5e-00.0");
  EXPECT_EQ(c.envs().at("KUBEACCEL_DEVICE_NODES"), "/dev/intel-fpga-fme.0,/dev/intel-fpga-port.0");
}

TEST_F(PluginTest, CdiSpecFollowsTheDevicesAndAllocateNamesThem) {
  h.plug("coral-pcie.umockdev");
  h.plug("movidius-ncs2-unbooted.umockdev");
  h.startPlugin(fastGrace());
  ASSERT_TRUE(waitHealth(kCoral, "0000-03-00.0", "Healthy"));
  const std::string coralSpec = h.root() + "/cdi/kubeaccel.io-coral-pcie.json";
  nlohmann::json spec = nlohmann::json::parse(slurp(coralSpec));
  EXPECT_EQ(spec["cdiVersion"], "0.6.0");
  EXPECT_EQ(spec["kind"], "kubeaccel.io/coral-pcie");
  ASSERT_EQ(spec["devices"].size(), 1u);
  EXPECT_EQ(spec["devices"][0]["name"], "0000-03-00.0");
  EXPECT_EQ(spec["devices"][0]["containerEdits"]["deviceNodes"][0]["path"], "/dev/apex_0");
  // Agent mode: a spec of the slots' hardened mounts (issue 10, section 5), with or without an agent.
  nlohmann::json slots = nlohmann::json::parse(slurp(h.root() + "/cdi/kubeaccel.io-movidius-ncs2.json"));
  EXPECT_EQ(slots["kind"], "kubeaccel.io/movidius-ncs2");
  ASSERT_EQ(slots["devices"].size(), 16u) << "4 slots, each at 4 places";
  EXPECT_EQ(slots["devices"][0]["name"], "usb-1-3-s0");
  EXPECT_EQ(slots["devices"][0]["containerEdits"]["mounts"][0]["hostPath"], h.agentDir() + "/movidius-ncs2/usb-1-3/s0");
  EXPECT_EQ(slots["devices"][0]["containerEdits"]["mounts"][0]["options"],
            nlohmann::json({"ro", "rbind", "nosuid", "nodev", "noexec"}));

  v1beta1::AllocateResponse resp;
  ASSERT_TRUE(h.kubelet().allocate(kCoral, {"0000-03-00.0"}, &resp).ok());
  ASSERT_EQ(resp.container_responses(0).cdi_devices_size(), 1);
  EXPECT_EQ(resp.container_responses(0).cdi_devices(0).name(), "kubeaccel.io/coral-pcie=0000-03-00.0");

  // The spec follows the devices: a new card gets its own spec, a dropped one leaves its spec.
  h.plug("hailo8.umockdev");
  ASSERT_TRUE(waitHealth(kHailo, "0000-04-00.0", "Healthy"));
  EXPECT_EQ(nlohmann::json::parse(slurp(h.root() + "/cdi/kubeaccel.io-hailo8.json"))["devices"][0]["name"],
            "0000-04-00.0");
  h.unplug(kCoralPcieSyspath);
  ASSERT_TRUE(h.kubelet().waitFor([](const Resources& rs) { return idsOf(rs, kCoral).empty(); }, kWait));
  EXPECT_TRUE(nlohmann::json::parse(slurp(coralSpec))["devices"].empty());

  EXPECT_EQ(h.stopPlugin(SIGTERM), 0);
  std::vector<std::string> left;
  for (const auto& e : std::filesystem::directory_iterator(h.root() + "/cdi")) left.push_back(e.path().string());
  EXPECT_TRUE(left.empty()) << "specs removed on shutdown, no temporary files: " << left.size();
}

TEST_F(PluginTest, RefusesUnknownAndUnhealthyDevices) {
  h.plug("coral-pcie.umockdev");
  h.startPlugin(h.writeConfig(R"({"graceWindowMs": 60000})"));
  ASSERT_TRUE(waitHealth(kCoral, "0000-03-00.0", "Healthy"));
  v1beta1::AllocateResponse resp;
  grpc::Status s = h.kubelet().allocate(kCoral, {"0000-99-00.0"}, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "kubeaccel.io/coral-pcie: container_requests[0]: unknown device ID '0000-99-00.0'");

  h.unplug(kCoralPcieSyspath);
  ASSERT_TRUE(waitHealth(kCoral, "0000-03-00.0", "Unhealthy"));
  s = h.kubelet().allocate(kCoral, {"0000-03-00.0"}, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(s.error_message().find("'0000-03-00.0' is Unhealthy"), std::string::npos) << s.error_message();
  EXPECT_TRUE(h.pluginRunning());
  EXPECT_EQ(h.stopPlugin(SIGTERM), 0) << "a client's mistake never kills the daemon";
}

TEST_F(PluginTest, PreferredAllocationPacksSlotsAndKeepsToOneNumaNode) {
  // Three sticks in one class: NCS and NCS2 on NUMA 0, Coral USB on NUMA 1.
  h.plug("movidius-ncs.umockdev");
  h.plug("movidius-ncs2-unbooted.umockdev");
  h.plug("coral-usb-unbooted.umockdev");
  h.startPlugin(h.writeConfig(R"({"builtin": false, "classes": [{"name": "sticks", "mode": "agent",
    "backend": "opencv-cpu", "slots": 2, "match": [
      {"subsystem": "usb", "vendor": "03e7"}, {"subsystem": "usb", "vendor": "1a6e"}]}]})"));
  const std::string sticks = "kubeaccel.io/sticks";
  ASSERT_TRUE(h.kubelet().waitFor([&](const Resources& rs) { return idsOf(rs, sticks).size() == 6; }, kWait));
  std::vector<std::string> all = idsOf(h.kubelet().resources(), sticks);
  // "usb-3-1" is the Coral (no serial): NUMA 1.
  std::vector<std::string> got;
  ASSERT_TRUE(h.kubelet().preferredAllocation(sticks, all, {}, 2, &got).ok());
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].substr(0, got[0].size() - 3), got[1].substr(0, got[1].size() - 3)) << "one physical device";

  ASSERT_TRUE(h.kubelet().preferredAllocation(sticks, all, {"usb-3-1-s1"}, 2, &got).ok());
  EXPECT_EQ(got, (std::vector<std::string>{"usb-3-1-s1", "usb-3-1-s0"}));

  // Four slots: both devices of NUMA 0 rather than anything of NUMA 1.
  std::vector<std::string> numa0;
  for (const auto& id : all)
    if (id.rfind("usb-3-1", 0) != 0) numa0.push_back(id);
  ASSERT_TRUE(h.kubelet().preferredAllocation(sticks, all, {}, 4, &got).ok());
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, numa0);

  grpc::Status s = h.kubelet().preferredAllocation(sticks, all, {}, 7, &got);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(h.kubelet().preStartContainer(sticks, {all[0]}).ok());
}

TEST_F(PluginTest, PreStartIsRequiredOnlyWhenTheClassAsks) {
  h.plug("coral-pcie.umockdev");
  h.startPlugin(h.writeConfig(R"({"classes": [{"name": "coral-pcie", "preStartRequired": true,
    "match": [{"subsystem": "pci", "vendor": "1ac1", "device": "089a"}]}]})"));
  ASSERT_TRUE(h.kubelet().waitForRegistrations(kCoral, 1, kWait));
  EXPECT_TRUE(h.kubelet().resources()[kCoral].options.pre_start_required());
  EXPECT_TRUE(h.kubelet().preStartContainer(kCoral, {"0000-03-00.0"}).ok());
}

TEST_F(PluginTest, BadConfigExitsTwoNamingTheKey) {
  std::string bad = h.writeConfig(R"({"classes": [{"name": "x", "match": [{"subsystem": "usb", "vendor": "xyz"}]}]})");
  std::string err;
  EXPECT_EQ(h.runPluginToExit({"--config", bad, "--kubelet-dir", h.kubeletDir()}, &err), 2);
  EXPECT_EQ(err, "kubeaccel-plugin: config " + bad +
                     ": classes[0].match[0].vendor: expected 4 lower-case hex digits, got 'xyz'\n");
  EXPECT_EQ(h.runPluginToExit({"--no-such-flag"}, &err), 2);
  EXPECT_EQ(err, "kubeaccel-plugin: unknown flag --no-such-flag (see --help)\n");
  EXPECT_EQ(h.runPluginToExit({"--config", h.root() + "/missing.json"}, &err), 2);
  EXPECT_NE(err.find("cannot read: No such file or directory"), std::string::npos);
  EXPECT_EQ(h.runPluginToExit({"--help"}, &err), 0);
  EXPECT_NE(err.find("--kubelet-dir DIR"), std::string::npos);
}

TEST_F(PluginTest, SigtermEndsStreamsAndLeavesNoSockets) {
  h.plug("coral-pcie.umockdev");
  h.plug("movidius-ncs2-unbooted.umockdev");
  h.startPlugin("");
  ASSERT_TRUE(h.kubelet().waitForRegistrations(kCoral, 1, kWait));
  ASSERT_TRUE(h.kubelet().waitForRegistrations(kNcs2, 1, kWait));
  EXPECT_EQ(h.stopPlugin(SIGTERM), 0);
  EXPECT_EQ(h.socketsInDevicePluginDir(), std::vector<std::string>{"kubelet.sock"});
  ASSERT_TRUE(h.kubelet().waitFor([](const Resources& rs) {
    return !rs.at(kCoral).streamOpen && !rs.at(kNcs2).streamOpen;
  }, kWait)) << "the kubelet sees the streams end";
}

TEST_F(PluginTest, ProbesAnswerForTheRunningDaemons) {
  h.plug("coral-pcie.umockdev");
  h.plug("movidius-ncs2-unbooted.umockdev");
  std::string out, err;
  std::vector<std::string> pluginProbe = {KUBEACCEL_PLUGIN_BIN_FOR_TESTS, "--probe", "--agent-dir", h.agentDir()};
  std::vector<std::string> agentProbe = {KUBEACCEL_AGENT_BIN_FOR_TESTS, "--probe", "--agent-dir", h.agentDir()};
  EXPECT_EQ(h.run(pluginProbe, &out, &err), 1);
  EXPECT_NE(err.find("probe: no daemon answers"), std::string::npos) << err;
  EXPECT_EQ(h.run(agentProbe, &out, &err), 1);

  startAgentAndPlugin(ncs2OnCpu());
  ASSERT_TRUE(h.kubelet().waitForRegistrations(kCoral, 1, kWait));
  ASSERT_TRUE(h.kubelet().waitForRegistrations(kNcs2, 1, kWait));
  ASSERT_TRUE(h.waitForAgentLog("serving 4 slot socket(s)"));
  EXPECT_EQ(h.run(pluginProbe, &out, &err), 0) << err;
  EXPECT_EQ(h.run(agentProbe, &out, &err), 0) << err;

  // A second plugin for the same kubelet directory refuses to start, with
  // another agent directory (its resource sockets answer) or the same one.
  std::string second;
  for (const std::string& agentDir : {h.root() + "/other-agent", h.agentDir()}) {
    EXPECT_EQ(h.runPluginToExit({"--kubelet-dir", h.kubeletDir(), "--agent-dir", agentDir, "--cdi-dir",
                                 h.root() + "/cdi"},
                                &second),
              1);
    EXPECT_NE(second.find("is another daemon running for the same directory?"), std::string::npos) << second;
  }

  EXPECT_EQ(h.stopAgent(SIGTERM), 0);
  EXPECT_EQ(h.run(agentProbe, &out, &err), 1);
  EXPECT_EQ(h.run(pluginProbe, &out, &err), 0) << "the plugin is fine without the agent: " << err;
}

TEST_F(PluginTest, SigintAlsoStopsCleanly) {
  h.plug("coral-pcie.umockdev");
  h.startPlugin("");
  ASSERT_TRUE(h.kubelet().waitForRegistrations(kCoral, 1, kWait));
  EXPECT_EQ(h.stopPlugin(SIGINT), 0);
  EXPECT_EQ(h.socketsInDevicePluginDir(), std::vector<std::string>{"kubelet.sock"});
}

}  // namespace
}  // namespace kubeaccel::testing

namespace kubeaccel::testing {
namespace {

// Issue 9, section 10: a slot is Healthy while its ServerReady is true, and
// follows it when models are loaded or unloaded later: the agent ends the
// plugin's watch stream when the answer changes, and the plugin asks again.
TEST_F(PluginTest, AgentSlotHealthFollowsServerReadyAcrossLoadAndUnload) {
  h.plug("movidius-ncs2-unbooted.umockdev");
  const std::string models = h.modelsDir();
  const std::string tiny = slurp(models + "/tiny/1/model.onnx");
  ASSERT_FALSE(tiny.empty());
  for (const char* m : {"squeezenet", "tiny", "relu", "pair", "loose"})
    std::ofstream(models + "/" + m + "/1/model.onnx", std::ios::trunc) << "not ONNX";
  startAgentAndPlugin(ncs2OnCpu());
  ASSERT_TRUE(h.kubelet().waitForRegistrations(kNcs2, 1, kWait));
  const std::string slot0 = "usb-1-3-s0";
  ASSERT_TRUE(h.kubelet().waitFor([&](const Resources& rs) { return idsOf(rs, kNcs2).size() == 4; }, kWait));
  ASSERT_TRUE(h.waitForAgentLog("serving 4 slot socket(s)"));
  std::this_thread::sleep_for(300ms);  // the watches have asked ServerReady
  EXPECT_EQ(healthOf(h.kubelet().resources(), kNcs2, slot0), "Unhealthy") << "no model can be served";

  // A model is fixed and loaded (through the admin socket): every slot turns Healthy.
  std::ofstream(models + "/tiny/1/model.onnx", std::ios::trunc | std::ios::binary) << tiny;
  auto stub = inference::GRPCInferenceService::NewStub(
      grpc::CreateChannel("unix://" + h.agentDir() + "/admin.sock", grpc::InsecureChannelCredentials()));
  inference::RepositoryModelLoadRequest load;
  load.set_model_name("tiny");
  inference::RepositoryModelLoadResponse loadResp;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    grpc::Status st = stub->RepositoryModelLoad(&ctx, load, &loadResp);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }
  auto allSlots = [&](const std::string& health) {
    return h.kubelet().waitFor([&](const Resources& rs) {
      for (int k = 0; k < 4; ++k)
        if (healthOf(rs, kNcs2, "usb-1-3-s" + std::to_string(k)) != health) return false;
      return true;
    }, kWait);
  };
  EXPECT_TRUE(allSlots("Healthy")) << "a model loaded later did not make the slots Healthy";

  // Unloaded: nothing can be served, every slot turns Unhealthy.
  inference::RepositoryModelUnloadRequest unload;
  unload.set_model_name("tiny");
  inference::RepositoryModelUnloadResponse unloadResp;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    grpc::Status st = stub->RepositoryModelUnload(&ctx, unload, &unloadResp);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }
  EXPECT_TRUE(allSlots("Unhealthy")) << "unloading the last model left the slots Healthy";
}

}  // namespace
}  // namespace kubeaccel::testing
