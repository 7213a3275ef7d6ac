// Faults that real nodes hit (issue 8), each tried on the real plugin (and
// agent) under umockdev testbeds against the kubelet stand-in.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "plugin_fixture.hpp"

namespace kubeaccel::testing {
namespace {

namespace fs = std::filesystem;

const std::string kPch = "/sys/devices/pci0000:00/0000:00:14.0";

std::vector<std::string> slotIds(const std::string& id, int n) {
  std::vector<std::string> out;
  for (int k = 0; k < n; ++k) out.push_back(id + "-s" + std::to_string(k));
  return out;
}

// A testbed description without the paragraphs whose devpath contains `part`.
std::string without(const std::string& description, const std::string& part) {
  std::string out, paragraph;
  std::istringstream in(description + "\n");
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) {
      paragraph += line + "\n";
      continue;
    }
    if (!paragraph.empty() && paragraph.substr(0, paragraph.find('\n')).find(part) == std::string::npos)
      out += paragraph + "\n";
    paragraph.clear();
  }
  return out;
}

std::vector<std::string> nodesOf(const v1beta1::ContainerAllocateResponse& c) {
  std::vector<std::string> out;
  for (const auto& d : c.devices()) out.push_back(d.host_path());
  return out;
}

class DiscoveryFaultTest : public PluginTest {
 protected:
  // A stick whose firmware boots re-enumerates onto the other half of its
  // socket. A pod holds slot 1 and has a region file in the slot directory;
  // afterwards the kubelet must have heard nothing, the slot directory must
  // be untouched, and Allocate of the pod's slot must still work.
  void bootOntoTheOtherHalf(const std::string& unbootedFile, const std::string& unbootedSyspath,
                            const std::string& bootedFile, const std::string& id) {
    h.plug(unbootedFile);
    // A short window, so that a wrong drop would happen inside the test.
    startAgentAndPlugin(ncs2OnCpu(R"("graceWindowMs": 400, )"));
    for (const auto& slot : slotIds(id, 4)) ASSERT_TRUE(waitHealth(kNcs2, slot, "Healthy")) << slot;
    v1beta1::AllocateResponse resp;
    ASSERT_TRUE(h.kubelet().allocate(kNcs2, {id + "-s1"}, &resp).ok());
    std::string slotDir = resp.container_responses(0).mounts(0).host_path();
    ASSERT_EQ(slotDir, h.agentDir() + "/movidius-ncs2/" + id + "/s1");
    std::ofstream(slotDir + "/region") << "the pod's data";
    int updatesBefore = h.kubelet().resources()[kNcs2].updates;

    h.unplug(unbootedSyspath);
    h.plug(bootedFile);
    std::this_thread::sleep_for(1200ms);  // three windows: a wrong new ID or a drop would show

    Resources rs = h.kubelet().resources();
    EXPECT_EQ(idsOf(rs, kNcs2), slotIds(id, 4)) << "same ID, same slots, no second set";
    EXPECT_EQ(rs[kNcs2].updates, updatesBefore) << "the kubelet is sent nothing";
    EXPECT_EQ(healthOf(rs, kNcs2, id + "-s1"), "Healthy");
    EXPECT_TRUE(fs::exists(slotDir + "/region")) << "the pod's slot directory stays";
    EXPECT_TRUE(fs::exists(slotDir + "/inference.sock")) << "and the agent still serves it";
    resp.Clear();
    EXPECT_TRUE(h.kubelet().allocate(kNcs2, {id + "-s1"}, &resp).ok());
    EXPECT_EQ(h.pluginLog().find("dropped"), std::string::npos) << "the plugin dropped nothing";
    EXPECT_EQ(h.agentLog().find("device dropped"), std::string::npos) << "the agent dropped nothing";
    EXPECT_EQ(h.agentLog().find("serving 4 slot socket(s)"), h.agentLog().rfind("serving 4 slot socket(s)"))
        << "the agent served one device, once";
  }
};

// Case 1: an NCS2 at 1-3 boots and comes back as 03e7:f63b at 2-1, the USB 3
// half of the same socket (usb1-port3 <-> usb2-port1).
TEST_F(DiscoveryFaultTest, AStickBootingOntoTheUsb3RootHubKeepsItsIdAndSlots) {
  bootOntoTheOtherHalf("movidius-ncs2-unbooted.umockdev", kPch + "/usb1/1-3", "movidius-ncs2-booted-usb3.umockdev",
                       "usb-1-3");
}

// Case 1 on a USB 3 hub: the hub is 1-6 on the USB 2 root hub and 2-2 on the
// USB 3 one; the stick goes from 1-6.4 to 2-2.4, ports that are peers.
TEST_F(DiscoveryFaultTest, AStickBootingOntoAUsb3HubsOtherHalfKeepsItsIdAndSlots) {
  bootOntoTheOtherHalf("movidius-ncs2-unbooted-hub.umockdev", kPch + "/usb1/1-6/1-6.4",
                       "movidius-ncs2-booted-hub.umockdev", "usb-1-6.4");
}

// Case 1, from the other side: a plugin that starts while the stick is
// already booted on the USB 3 half names it by the socket all the same.
TEST_F(DiscoveryFaultTest, AStickAlreadyOnTheUsb3HalfAtStartIsNamedByItsSocket) {
  h.plug("movidius-ncs2-booted-usb3.umockdev");
  h.startPlugin(ncs2OnCpu());
  ASSERT_TRUE(h.kubelet().waitFor([](const Resources& rs) { return idsOf(rs, kNcs2).size() == 4; }, kWait));
  EXPECT_EQ(idsOf(h.kubelet().resources(), kNcs2), slotIds("usb-1-3", 4));
}

// Case 2: two dongles share a factory serial. A is allocated; B arrives; the
// plugin restarts; they are unplugged and plugged back in the other order, and
// one loses its serial. A's ID never moves, and never names B's node.
TEST_F(DiscoveryFaultTest, DuplicateSerialsNeverMoveAnIdAcrossRestarts) {
  const std::string ftdi = "kubeaccel.io/ftdi";
  std::string config = h.writeConfig(R"({"graceWindowMs": 200, "classes": [{"name": "ftdi", "mode": "device",
    "match": [{"subsystem": "usb", "vendor": "0403", "product": "6001"}]}]})");
  auto nodeOf = [&](const std::string& id) {
    v1beta1::AllocateResponse resp;
    grpc::Status s = h.kubelet().allocate(ftdi, {id}, &resp);
    EXPECT_TRUE(s.ok()) << id << ": " << s.error_message();
    return s.ok() ? nodesOf(resp.container_responses(0)) : std::vector<std::string>{};
  };
  auto waitIds = [&](const std::vector<std::string>& ids) {
    return h.kubelet().waitFor([&](const Resources& rs) {
      if (idsOf(rs, ftdi) != ids) return false;
      for (const auto& id : ids)
        if (healthOf(rs, ftdi, id) != "Healthy") return false;
      return true;
    }, kWait);
  };
  const std::vector<std::string> nodeA = {"/dev/bus/usb/001/007"}, nodeB = {"/dev/bus/usb/001/008"};

  h.plug("ftdi-twin-a.umockdev");
  h.startPlugin(config);
  ASSERT_TRUE(waitIds({"usb-1-7"})) << "a serial, unique so far, does not name it either";
  EXPECT_EQ(nodeOf("usb-1-7"), nodeA);

  h.plug("ftdi-twin-b.umockdev");
  ASSERT_TRUE(waitIds({"usb-1-7", "usb-1-8"}));
  EXPECT_EQ(nodeOf("usb-1-7"), nodeA);
  EXPECT_EQ(nodeOf("usb-1-8"), nodeB);

  ASSERT_EQ(h.stopPlugin(SIGTERM), 0);
  h.startPlugin(config);
  ASSERT_TRUE(h.kubelet().waitForRegistrations(ftdi, 2, kWait));
  ASSERT_TRUE(waitIds({"usb-1-7", "usb-1-8"})) << "the same IDs after a restart";
  EXPECT_EQ(nodeOf("usb-1-7"), nodeA) << "the ID a pod holds still names that pod's node";
  EXPECT_EQ(nodeOf("usb-1-8"), nodeB);

  // The other plug order, with A's serial gone (unreadable, or changed).
  h.unplug(kPch + "/usb1/1-7");
  h.unplug(kPch + "/usb1/1-8");
  ASSERT_TRUE(waitIds({}));
  h.plug("ftdi-twin-b.umockdev");
  std::string noSerial = PluginHarness::readTestbed("ftdi-twin-a.umockdev");
  for (const char* line : {"A: serial=A50285BI\n", "E: ID_SERIAL_SHORT=A50285BI\n"})
    noSerial.erase(noSerial.find(line), std::string(line).size());
  h.plugText(noSerial);
  ASSERT_TRUE(waitIds({"usb-1-7", "usb-1-8"}));
  EXPECT_EQ(nodeOf("usb-1-7"), nodeA);
  EXPECT_EQ(nodeOf("usb-1-8"), nodeB);
  ASSERT_EQ(h.stopPlugin(SIGTERM), 0);
  h.startPlugin(config);
  ASSERT_TRUE(h.kubelet().waitForRegistrations(ftdi, 3, kWait));
  ASSERT_TRUE(waitIds({"usb-1-7", "usb-1-8"}));
  EXPECT_EQ(nodeOf("usb-1-7"), nodeA);
}

// Case 3: a Coral PCIe whose driver lets go of it (apex_0 removed, "unbind")
// while the PCI function stays: Unhealthy with the reason, no allocation, no
// CDI device without nodes; Healthy again when the driver binds.
TEST_F(DiscoveryFaultTest, ACardWithoutItsNodesIsUnhealthyUntilItsDriverBindsAgain) {
  h.plug("coral-pcie.umockdev");
  h.startPlugin("");
  ASSERT_TRUE(waitHealth(kCoral, "0000-03-00.0", "Healthy"));
  const std::string spec = h.root() + "/cdi/kubeaccel.io-coral-pcie.json";

  h.unbindDriver(kCoralPcieSyspath, {kCoralPcieSyspath + "/apex/apex_0"});
  ASSERT_TRUE(waitHealth(kCoral, "0000-03-00.0", "Unhealthy"));
  EXPECT_TRUE(h.waitForLog("kubeaccel.io/coral-pcie: device 0000-03-00.0 is now Unhealthy: no device node of "
                           "subsystem apex"));
  v1beta1::AllocateResponse resp;
  grpc::Status s = h.kubelet().allocate(kCoral, {"0000-03-00.0"}, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  EXPECT_EQ(resp.container_responses_size(), 0);
  nlohmann::json doc = nlohmann::json::parse(slurp(spec));
  EXPECT_TRUE(doc["devices"].empty()) << "no CDI device without its nodes: " << doc.dump();

  h.bindDriver(kCoralPcieSyspath, "coral-pcie.umockdev");
  ASSERT_TRUE(waitHealth(kCoral, "0000-03-00.0", "Healthy"));
  resp.Clear();
  ASSERT_TRUE(h.kubelet().allocate(kCoral, {"0000-03-00.0"}, &resp).ok());
  EXPECT_EQ(nodesOf(resp.container_responses(0)), std::vector<std::string>{"/dev/apex_0"});
  EXPECT_EQ(resp.container_responses(0).envs().at("KUBEACCEL_DEVICE_NODES"), "/dev/apex_0");
  doc = nlohmann::json::parse(slurp(spec));
  ASSERT_EQ(doc["devices"].size(), 1u);
  EXPECT_EQ(doc["devices"][0]["containerEdits"]["deviceNodes"][0]["path"], "/dev/apex_0");
}

// Case 3 at start-up: a card found without its driver is never Healthy.
TEST_F(DiscoveryFaultTest, ACardFoundWithoutItsDriverStartsUnhealthy) {
  h.plug("coral-pcie.umockdev");
  h.unbindDriver(kCoralPcieSyspath, {kCoralPcieSyspath + "/apex/apex_0"});
  h.startPlugin("");
  ASSERT_TRUE(h.kubelet().waitForRegistrations(kCoral, 1, kWait));
  ASSERT_TRUE(waitHealth(kCoral, "0000-03-00.0", "Unhealthy"));
  EXPECT_TRUE(h.waitForLog("coral-pcie device 0000-03-00.0 at pci 0000:03:00.0: no device node of subsystem apex: "
                           "no driver is bound to 0000:03:00.0"));
}

// Case 4: two 4-slot sticks; pods ask for 1, 1, then 4 slots, and as the
// kubelet does, each GetPreferredAllocation is offered only the IDs still free.
// `pack` puts pod 2 beside pod 1, so the 4-slot pod fits on the other stick
// whole; `spread` puts pod 2 on the idle stick.
TEST_F(DiscoveryFaultTest, PackAndSpreadHoldAcrossRequests) {
  h.plug("movidius-ncs2-unbooted.umockdev");
  h.plug("movidius-ncs2-unbooted-hub.umockdev");
  for (const char* policy : {"pack", "spread"}) {
    SCOPED_TRACE(policy);
    std::string config = h.writeConfig(R"({"classes": [{"name": "movidius-ncs2", "mode": "agent", "slots": 4,
      "backend": "opencv-cpu", "slotPolicy": ")" + std::string(policy) + R"(", "match": [
      {"subsystem": "usb", "vendor": "03e7", "product": "2485"}]}]})");
    h.startPlugin(config);
    ASSERT_TRUE(h.kubelet().waitFor([](const Resources& rs) {
      return rs.count(kNcs2) && rs.at(kNcs2).streamOpen && idsOf(rs, kNcs2).size() == 8;
    }, kWait));
    std::vector<std::string> free = idsOf(h.kubelet().resources(), kNcs2);
    auto place = [&](int size) {
      std::vector<std::string> got;
      grpc::Status s = h.kubelet().preferredAllocation(kNcs2, free, {}, size, &got);
      EXPECT_TRUE(s.ok()) << s.error_message();
      std::set<std::string> sticks;
      for (const auto& id : got) {
        free.erase(std::find(free.begin(), free.end(), id));
        sticks.insert(id.substr(0, id.rfind("-s")));
      }
      return sticks;
    };
    std::set<std::string> pod1 = place(1), pod2 = place(1);
    ASSERT_EQ(pod1.size(), 1u);
    if (std::string(policy) == "pack") {
      EXPECT_EQ(pod2, pod1) << "pack fills the stick in use first";
      EXPECT_EQ(place(4).size(), 1u) << "so the 4-slot pod fits on one stick";
    } else {
      EXPECT_NE(pod2, pod1) << "spread takes the stick with the most free slots";
      EXPECT_EQ(place(2).size(), 2u);
    }
    ASSERT_EQ(h.stopPlugin(SIGTERM), 0);
  }
}

// Case 5: the Alveo's two functions are one device with both functions' nodes;
// a function that goes leaves the card under its ID, Unhealthy without the
// user function's render node.
TEST_F(DiscoveryFaultTest, AnAlveoCardIsOneDevice) {
  const std::string alveo = "kubeaccel.io/xilinx-alveo";
  const std::string card = "/sys/devices/pci0000:ae/0000:ae:00.0/0000:af:00";
  h.plug("xilinx-alveo.umockdev");
  h.startPlugin("");
  ASSERT_TRUE(waitHealth(alveo, "0000-af-00.0", "Healthy"));
  EXPECT_EQ(idsOf(h.kubelet().resources(), alveo), std::vector<std::string>{"0000-af-00.0"});
  v1beta1::AllocateResponse resp;
  ASSERT_TRUE(h.kubelet().allocate(alveo, {"0000-af-00.0"}, &resp).ok());
  EXPECT_EQ(nodesOf(resp.container_responses(0)),
            (std::vector<std::string>{"/dev/dri/card1", "/dev/dri/renderD128", "/dev/xclmgmt44800"}));

  h.unplug(card + ".1");
  ASSERT_TRUE(waitHealth(alveo, "0000-af-00.0", "Unhealthy"));
  EXPECT_TRUE(h.waitForLog("device 0000-af-00.0 is now Unhealthy: no device node matching /dev/dri/renderD*"));
  EXPECT_EQ(idsOf(h.kubelet().resources(), alveo), std::vector<std::string>{"0000-af-00.0"});
  h.plug("xilinx-alveo.umockdev");
  ASSERT_TRUE(waitHealth(alveo, "0000-af-00.0", "Healthy"));
}

// Case 5, whatever the order: a card is named by its function 0 whichever of
// its functions is there and came first, so one card never has two IDs (two
// IDs would hand its nodes to two pods), before or after a restart.
TEST_F(DiscoveryFaultTest, ACardHasOneIdWhicheverFunctionComesFirst) {
  const std::string alveo = "kubeaccel.io/xilinx-alveo";
  const std::string card = "/sys/devices/pci0000:ae/0000:ae:00.0/0000:af:00";
  const std::string userOnly = without(PluginHarness::readTestbed("xilinx-alveo.umockdev"), "0000:af:00.0/");
  h.plugText(without(userOnly, "0000:af:00.0\n"));
  std::string config = h.writeConfig(R"({"graceWindowMs": 60000})");
  h.startPlugin(config);
  ASSERT_TRUE(waitHealth(alveo, "0000-af-00.0", "Unhealthy")) << "the user function alone: the card's ID";
  h.plug("xilinx-alveo.umockdev");  // the management function arrives
  ASSERT_TRUE(waitHealth(alveo, "0000-af-00.0", "Healthy"));
  v1beta1::AllocateResponse resp;
  ASSERT_TRUE(h.kubelet().allocate(alveo, {"0000-af-00.0"}, &resp).ok());
  EXPECT_EQ(nodesOf(resp.container_responses(0)),
            (std::vector<std::string>{"/dev/dri/card1", "/dev/dri/renderD128", "/dev/xclmgmt44800"}));
  EXPECT_EQ(idsOf(h.kubelet().resources(), alveo), std::vector<std::string>{"0000-af-00.0"});

  // Both go, then come back user function first: still one device.
  h.unplug(card + ".0");
  h.unplug(card + ".1");
  ASSERT_TRUE(waitHealth(alveo, "0000-af-00.0", "Unhealthy"));
  h.plugText(userOnly);
  h.plug("xilinx-alveo.umockdev");
  ASSERT_TRUE(waitHealth(alveo, "0000-af-00.0", "Healthy"));
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(idsOf(h.kubelet().resources(), alveo), std::vector<std::string>{"0000-af-00.0"});

  // A restart with the management function gone names it the same.
  h.unplug(card + ".0");
  ASSERT_EQ(h.stopPlugin(SIGTERM), 0);
  h.startPlugin(config);
  ASSERT_TRUE(h.kubelet().waitForRegistrations(alveo, 2, kWait));
  ASSERT_TRUE(waitHealth(alveo, "0000-af-00.0", "Unhealthy")) << "no /dev/xclmgmt*: not all it needs";
  EXPECT_EQ(idsOf(h.kubelet().resources(), alveo), std::vector<std::string>{"0000-af-00.0"});
}

// Case 3, partly: a device that loses one of the nodes its class needs (the
// FPGA PAC's port, without which no workload runs) is Unhealthy too.
TEST_F(DiscoveryFaultTest, ADeviceMissingARequiredNodeIsUnhealthy) {
  const std::string pac = "kubeaccel.io/intel-fpga-pac";
  const std::string port = "/sys/devices/pci0000:5d/0000:5d:00.0/0000:5e:00.0/fpga/intel-fpga-dev.0/intel-fpga-port.0";
  h.plug("intel-fpga-pac.umockdev");
  h.startPlugin("");
  ASSERT_TRUE(waitHealth(pac, "0000-5e-00.0", "Healthy"));
  h.unplug(port);
  ASSERT_TRUE(waitHealth(pac, "0000-5e-00.0", "Unhealthy"));
  EXPECT_TRUE(h.waitForLog("device 0000-5e-00.0 is now Unhealthy: no device node matching /dev/intel-fpga-port.*"));
  v1beta1::AllocateResponse resp;
  EXPECT_EQ(h.kubelet().allocate(pac, {"0000-5e-00.0"}, &resp).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  h.plug("intel-fpga-pac.umockdev");
  ASSERT_TRUE(waitHealth(pac, "0000-5e-00.0", "Healthy"));
}

}  // namespace
}  // namespace kubeaccel::testing
