// `kubeaccel devices` on a umockdev testbed of every catalog entry: the
// plugin's discovery code, as an admin would run it on a node.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <signal.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <grpcpp/grpcpp.h>

#include "inference/grpc_service.grpc.pb.h"
#include "plugin_harness.hpp"

namespace kubeaccel::testing {
namespace {

using json = nlohmann::json;

struct Expected {
  std::string file;
  std::string resource;
  std::string id;  // physical ID
  std::vector<std::string> nodes;
  int numa;
  int advertised;  // entries: slots in agent mode
};

class DevicesCliTest : public ::testing::TestWithParam<Expected> {
 protected:
  PluginHarness h;

  json devicesJson(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv = {KUBEACCEL_CLI_BIN, "devices", "--json"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    std::string out, err;
    int rc = h.run(argv, &out, &err);
    EXPECT_EQ(rc, 0) << err;
    try {
      return json::parse(out);  // stdout holds only the document
    } catch (const std::exception& e) {
      ADD_FAILURE() << "stdout is not JSON: " << e.what() << "\n" << out;
      return json::object();
    }
  }
};

TEST_P(DevicesCliTest, DiscoversTheCatalogEntry) {
  const Expected& want = GetParam();
  h.plug(want.file);
  h.plug("unrelated.umockdev");  // a root hub, a mouse, a flash stick, a NIC: never advertised
  json doc = devicesJson();
  ASSERT_TRUE(doc.contains("devices"));
  const json& devices = doc["devices"];
  ASSERT_EQ(devices.size(), static_cast<size_t>(want.advertised)) << doc.dump(2);
  for (const auto& d : devices) {
    EXPECT_EQ(d["resource"], want.resource);
    EXPECT_EQ(d["physicalId"], want.id);
    EXPECT_EQ(d["health"], "Healthy");
    EXPECT_EQ(d["nodes"].get<std::vector<std::string>>(), want.nodes);
    ASSERT_TRUE(d["numaNode"].is_number_integer());
    EXPECT_EQ(d["numaNode"].get<int>(), want.numa);
    if (want.advertised > 1) {
      EXPECT_EQ(d["mode"], "agent");
      EXPECT_EQ(d["id"], want.id + "-s" + std::to_string(d["slot"].get<int>()));
    } else {
      EXPECT_EQ(d["id"], want.id);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Catalog, DevicesCliTest,
    ::testing::Values(
        Expected{"movidius-ncs.umockdev", "kubeaccel.io/movidius-ncs", "usb-1-2", {"/dev/bus/usb/001/003"}, 0, 2},
        Expected{"movidius-ncs2-unbooted.umockdev", "kubeaccel.io/movidius-ncs2", "usb-1-3",
                 {"/dev/bus/usb/001/004"}, 0, 4},
        Expected{"movidius-ncs2-booted.umockdev", "kubeaccel.io/movidius-ncs2", "usb-1-3",
                 {"/dev/bus/usb/001/005"}, 0, 4},
        // The booted stick on the socket's USB 3 half (2-1), and both on a USB 3 hub's halves:
        // each is named by the USB 2 half of its socket.
        Expected{"movidius-ncs2-booted-usb3.umockdev", "kubeaccel.io/movidius-ncs2", "usb-1-3",
                 {"/dev/bus/usb/002/002"}, 0, 4},
        Expected{"movidius-ncs2-unbooted-hub.umockdev", "kubeaccel.io/movidius-ncs2", "usb-1-6.4",
                 {"/dev/bus/usb/001/010"}, 0, 4},
        Expected{"movidius-ncs2-booted-hub.umockdev", "kubeaccel.io/movidius-ncs2", "usb-1-6.4",
                 {"/dev/bus/usb/002/004"}, 0, 4},
        Expected{"coral-usb-unbooted.umockdev", "kubeaccel.io/coral-usb", "usb-3-1", {"/dev/bus/usb/003/002"}, 1, 4},
        Expected{"coral-usb-booted.umockdev", "kubeaccel.io/coral-usb", "usb-3-1", {"/dev/bus/usb/003/003"}, 1, 4},
        Expected{"coral-pcie.umockdev", "kubeaccel.io/coral-pcie", "0000-03-00.0", {"/dev/apex_0"}, 0, 1},
        Expected{"hailo8.umockdev", "kubeaccel.io/hailo8", "0000-04-00.0", {"/dev/hailo0"}, 0, 1},
        Expected{"intel-fpga-pac.umockdev", "kubeaccel.io/intel-fpga-pac", "0000-5e-00.0",
                 {"/dev/intel-fpga-fme.0", "/dev/intel-fpga-port.0"}, 1, 1},
        Expected{"accel.umockdev", "kubeaccel.io/accel", "0000-00-0b.0", {"/dev/accel/accel0"}, -1, 1},
        // One card, one device: the Alveo's management and user functions together.
        Expected{"xilinx-alveo.umockdev", "kubeaccel.io/xilinx-alveo", "0000-af-00.0",
                 {"/dev/dri/card1", "/dev/dri/renderD128", "/dev/xclmgmt44800"}, 1, 1}),
    [](const auto& info) {
      std::string name = info.param.file.substr(0, info.param.file.find('.'));
      for (char& c : name)
        if (c == '-') c = '_';
      return name;
    });

// Issue 8, case 5: the Alveo's two PCI functions (00.0 management, 00.1 user)
// are one card: one device, its ID the lowest function's, the union of nodes.
TEST_F(DevicesCliTest, XilinxAlveoIsOneCard) {
  h.plug("xilinx-alveo.umockdev");
  json devices = devicesJson()["devices"];
  ASSERT_EQ(devices.size(), 1u) << devices.dump(2);
  EXPECT_EQ(devices[0]["id"], "0000-af-00.0");
  EXPECT_EQ(devices[0]["bus"], "pci 0000:af:00.0,0000:af:00.1");
  EXPECT_EQ(devices[0]["nodes"].get<std::vector<std::string>>(),
            (std::vector<std::string>{"/dev/dri/card1", "/dev/dri/renderD128", "/dev/xclmgmt44800"}));
}

TEST_F(DevicesCliTest, TableNamesEveryColumn) {
  h.plug("coral-pcie.umockdev");
  std::string out, err;
  ASSERT_EQ(h.run({KUBEACCEL_CLI_BIN, "devices"}, &out, &err), 0) << err;
  for (const char* col : {"RESOURCE", "ID", "HEALTH", "MODE", "NUMA", "VENDOR:PRODUCT", "BUS", "NODES"})
    EXPECT_NE(out.find(col), std::string::npos) << col;
  EXPECT_NE(out.find("kubeaccel.io/coral-pcie"), std::string::npos);
  EXPECT_NE(out.find("1ac1:089a"), std::string::npos);
  EXPECT_NE(out.find("pci 0000:03:00.0"), std::string::npos);
  EXPECT_NE(out.find("/dev/apex_0"), std::string::npos);
}

TEST_F(DevicesCliTest, NoDevicesIsNotAnError) {
  std::string out, err;
  ASSERT_EQ(h.run({KUBEACCEL_CLI_BIN, "devices", "--json"}, &out, &err), 0) << err;
  EXPECT_EQ(json::parse(out), json::parse(R"({"devices": []})"));
}

TEST_F(DevicesCliTest, BadConfigExitsTwo) {
  std::string out, err;
  std::string bad = h.writeConfig(R"({"classes": [{"name": "x", "mode": "magic", "match": [{"subsystem": "usb"}]}]})");
  EXPECT_EQ(h.run({KUBEACCEL_CLI_BIN, "devices", "--config", bad}, &out, &err), 2);
  EXPECT_EQ(err, "kubeaccel: config " + bad + ": classes[0].mode: expected one of agent, device, got 'magic'\n");
  EXPECT_EQ(out, "");
}

}  // namespace
}  // namespace kubeaccel::testing

namespace kubeaccel::testing {
namespace {

std::string replaceOnce(std::string text, const std::string& from, const std::string& to) {
  auto pos = text.find(from);
  if (pos == std::string::npos) throw std::runtime_error("testbed has no '" + from + "'");
  return text.replace(pos, from.size(), to);
}

class DiscoveryEdgeTest : public ::testing::Test {
 protected:
  PluginHarness h;
  int devices(std::string* out, std::string* err) {
    return h.run({KUBEACCEL_CLI_BIN, "devices", "--json", "--log-level", "info"}, out, err);
  }
};

TEST_F(DiscoveryEdgeTest, NvidiaNodeComesFromTheDriversMinor) {
  h.plug("nvidia-gpu.umockdev");
  std::string proc = h.root() + "/proc";
  std::filesystem::create_directories(proc + "/driver/nvidia/gpus/0000:3b:00.0");
  std::ofstream(proc + "/driver/nvidia/gpus/0000:3b:00.0/information")
      << "Model: \t\t NVIDIA A100-SXM4-40GB\nIRQ:   \t\t 86\nGPU UUID: \t GPU-0e0e\nDevice Minor: \t 3\n";
  ::setenv("KUBEACCEL_PROC_ROOT", proc.c_str(), 1);
  std::string out, err;
  int rc = devices(&out, &err);
  ::unsetenv("KUBEACCEL_PROC_ROOT");
  ASSERT_EQ(rc, 0) << err;
  json doc = json::parse(out);
  ASSERT_EQ(doc["devices"].size(), 1u) << out;
  EXPECT_EQ(doc["devices"][0]["id"], "0000-3b-00.0");
  EXPECT_EQ(doc["devices"][0]["nodes"].get<std::vector<std::string>>(), std::vector<std::string>{"/dev/nvidia3"});
  EXPECT_EQ(doc["devices"][0]["numaNode"], 0);
}

// Issue 8, case 3: a GPU with no driver entry has no /dev/nvidiaN: Unhealthy, saying why.
TEST_F(DiscoveryEdgeTest, NvidiaWithoutItsDriverIsUnhealthyWithTheReason) {
  h.plug("nvidia-gpu.umockdev");
  ::setenv("KUBEACCEL_PROC_ROOT", (h.root() + "/no-proc").c_str(), 1);
  std::string out, err;
  int rc = devices(&out, &err);
  ::unsetenv("KUBEACCEL_PROC_ROOT");
  ASSERT_EQ(rc, 0) << err;
  json doc = json::parse(out);
  ASSERT_EQ(doc["devices"].size(), 1u);
  EXPECT_EQ(doc["devices"][0]["health"], "Unhealthy");
  EXPECT_EQ(doc["devices"][0]["problem"],
            "no /dev/nvidiaN: the NVIDIA driver has not claimed it (no /proc/driver/nvidia/gpus/0000:3b:00.0)");
}

// Issue 8, case 3: a Coral PCIe whose driver is not bound has no apex node:
// Unhealthy, with the reason in the table and the JSON.
TEST_F(DiscoveryEdgeTest, ACardWithoutItsNodesIsUnhealthyWithTheReason) {
  std::string text = PluginHarness::readTestbed("coral-pcie.umockdev");
  text = text.substr(text.find("\n\n") + 2);  // without the apex_0 child
  text = replaceOnce(text, "E: DRIVER=apex\n", "");
  text = replaceOnce(text, "L: driver=../../../../bus/pci/drivers/apex\n", "");
  h.plugText(text);
  h.plug("hailo8.umockdev");
  std::string out, err;
  ASSERT_EQ(devices(&out, &err), 0) << err;
  json doc = json::parse(out);
  ASSERT_EQ(doc["devices"].size(), 2u) << out;
  EXPECT_EQ(doc["devices"][0]["resource"], "kubeaccel.io/coral-pcie");
  EXPECT_EQ(doc["devices"][0]["health"], "Unhealthy");
  EXPECT_EQ(doc["devices"][0]["nodes"], json::array());
  EXPECT_EQ(doc["devices"][0]["problem"], "no device node of subsystem apex: no driver is bound to 0000:03:00.0");
  EXPECT_EQ(doc["devices"][1]["health"], "Healthy") << "the Hailo-8 beside it is fine";
  EXPECT_FALSE(doc["devices"][1].contains("problem"));
  ASSERT_EQ(h.run({KUBEACCEL_CLI_BIN, "devices"}, &out, &err), 0) << err;
  EXPECT_NE(out.find("Unhealthy because:\n  coral-pcie 0000-03-00.0: no device node of subsystem apex: no driver is "
                     "bound to 0000:03:00.0\n"),
            std::string::npos)
      << out;
}

TEST_F(DiscoveryEdgeTest, MalformedNvidiaMinorSkipsTheDevice) {
  h.plug("nvidia-gpu.umockdev");
  h.plug("hailo8.umockdev");
  std::string proc = h.root() + "/proc";
  std::filesystem::create_directories(proc + "/driver/nvidia/gpus/0000:3b:00.0");
  std::ofstream(proc + "/driver/nvidia/gpus/0000:3b:00.0/information") << "Device Minor: \t lots\n";
  ::setenv("KUBEACCEL_PROC_ROOT", proc.c_str(), 1);
  std::string out, err;
  int rc = devices(&out, &err);
  ::unsetenv("KUBEACCEL_PROC_ROOT");
  ASSERT_EQ(rc, 0) << err;
  EXPECT_NE(err.find("Device Minor: expected an integer from 0 to 255, got 'lots'"), std::string::npos) << err;
  json doc = json::parse(out);
  ASSERT_EQ(doc["devices"].size(), 1u) << "the GPU is skipped, the rest still listed";
  EXPECT_EQ(doc["devices"][0]["resource"], "kubeaccel.io/hailo8");
}

TEST_F(DiscoveryEdgeTest, MalformedNumaNodeSkipsTheDevice) {
  h.plugText(replaceOnce(PluginHarness::readTestbed("hailo8.umockdev"), "A: numa_node=0", "A: numa_node=banana"));
  h.plug("intel-fpga-pac.umockdev");
  std::string out, err;
  ASSERT_EQ(devices(&out, &err), 0) << err;
  EXPECT_NE(err.find("numa_node: expected an integer >= -1, got 'banana'"), std::string::npos) << err;
  json doc = json::parse(out);
  ASSERT_EQ(doc["devices"].size(), 1u) << out;
  EXPECT_EQ(doc["devices"][0]["resource"], "kubeaccel.io/intel-fpga-pac");
}

TEST_F(DiscoveryEdgeTest, MissingAttributesNeverMatchOrCrash) {
  // A Coral PCIe card whose vendor and device attributes are unreadable.
  std::string text = PluginHarness::readTestbed("coral-pcie.umockdev");
  text = replaceOnce(text, "A: vendor=0x1ac1\n", "");
  text = replaceOnce(text, "A: device=0x089a\n", "");
  h.plugText(text);
  std::string out, err;
  ASSERT_EQ(devices(&out, &err), 0) << err;
  EXPECT_EQ(json::parse(out)["devices"].size(), 0u) << out;
}

// Two accel nodes under one PCI function are one device with both nodes, not
// two devices with one ID.
TEST_F(DiscoveryEdgeTest, AccelNodesOfOneFunctionAreOneDevice) {
  std::string text = PluginHarness::readTestbed("accel.umockdev");
  std::string second = text.substr(0, text.find("\n\n") + 2);
  for (auto [from, to] : {std::pair<std::string, std::string>{"accel0", "accel1"}, {"261:0", "261:1"},
                          {"MINOR=0", "MINOR=1"}})
    for (auto at = second.find(from); at != std::string::npos; at = second.find(from, at + to.size()))
      second.replace(at, from.size(), to);
  h.plugText(second + text);
  std::string out, err;
  ASSERT_EQ(devices(&out, &err), 0) << err;
  json doc = json::parse(out);
  ASSERT_EQ(doc["devices"].size(), 1u) << out;
  EXPECT_EQ(doc["devices"][0]["id"], "0000-00-0b.0");
  EXPECT_EQ(doc["devices"][0]["nodes"], json::parse(R"(["/dev/accel/accel0", "/dev/accel/accel1"])"));
}

TEST_F(DiscoveryEdgeTest, AccelDeviceShowsItsPciFunctionsIds) {
  h.plug("accel.umockdev");
  std::string out, err;
  ASSERT_EQ(devices(&out, &err), 0) << err;
  json doc = json::parse(out);
  ASSERT_EQ(doc["devices"].size(), 1u) << out;
  EXPECT_EQ(doc["devices"][0]["vendor"], "8086");
  EXPECT_EQ(doc["devices"][0]["product"], "7d1d");
  EXPECT_EQ(doc["devices"][0]["bus"], "accel 0000:00:0b.0");
}

TEST_F(DiscoveryEdgeTest, UsbSpeedFromLibusbAndASlowPortWarning) {
  h.plug("movidius-ncs2-booted.umockdev");
  std::string out, err;
  ASSERT_EQ(devices(&out, &err), 0) << err;
  json doc = json::parse(out);
  ASSERT_EQ(doc["devices"].size(), 4u);
  EXPECT_EQ(doc["devices"][0]["usbSpeedMbps"], 480);
  EXPECT_EQ(doc["devices"][0]["usbConfigurations"], 1);
  EXPECT_EQ(doc["devices"][0]["bus"], "usb 1-3");
  EXPECT_NE(err.find("movidius-ncs2 device at usb 1-3 runs at 480 Mbps: plug it into a USB 3 port"), std::string::npos)
      << err;
}

// With the agent running, `kubeaccel devices` says which models each
// agent-mode device serves, as the agent says on its admin socket: READY ones
// only, as they are now. Without an agent, it says it does not know; for a
// device the agent does not serve (another catalog), it says so.
TEST(DevicesWithAgentTest, ListsTheModelsEachAgentDeviceServesAsTheAgentSaysNow) {
  PluginHarness h;
  h.plug("movidius-ncs.umockdev");
  h.plug("movidius-ncs2-unbooted.umockdev");
  const std::string config = h.writeConfig(R"({"classes": [
    {"name": "movidius-ncs", "mode": "agent", "backend": "opencv-cpu", "slots": 2, "reenumerates": true,
     "match": [{"subsystem": "usb", "vendor": "03e7", "product": "2150"}]},
    {"name": "movidius-ncs2", "mode": "agent", "backend": "opencv-cpu", "slots": 2, "reenumerates": true,
     "match": [{"subsystem": "usb", "vendor": "03e7", "product": "2485"},
               {"subsystem": "usb", "vendor": "03e7", "product": "f63b"}]}]})");
  auto devices = [&](const std::string& cfg, std::vector<std::string> extra, std::string* out, std::string* err) {
    std::vector<std::string> argv = {KUBEACCEL_CLI_BIN, "devices", "--config", cfg, "--agent-dir", h.agentDir()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    EXPECT_EQ(h.run(argv, out, err), 0) << *err;
  };
  std::string out, err;
  devices(config, {}, &out, &err);
  EXPECT_NE(out.find("Models served: unknown, no agent socket at " + h.agentDir() + "/admin.sock"), std::string::npos)
      << out;
  devices(config, {"--json"}, &out, &err);
  EXPECT_FALSE(json::parse(out)["devices"][0].contains("models")) << "absent, not empty, without an agent:\n" << out;
  EXPECT_NE(err.find("models served: unknown"), std::string::npos) << "the reason, on stderr: " << err;

  h.startAgent(config);
  ASSERT_TRUE(h.waitForAgentLog("serving 2 slot socket(s) under " + h.agentDir() + "/movidius-ncs2/")) << h.agentLog();
  ASSERT_TRUE(h.waitForAgentLog("serving 2 slot socket(s) under " + h.agentDir() + "/movidius-ncs/")) << h.agentLog();
  devices(config, {}, &out, &err);
  EXPECT_NE(out.find("Models served (kubeaccel-agent):\n"
                     "  movidius-ncs/usb-1-2: loose, pair, relu, squeezenet, tiny\n"
                     "  movidius-ncs2/usb-1-3: loose, pair, relu, squeezenet, tiny\n"),
            std::string::npos)
      << out;
  ASSERT_EQ(h.run({KUBEACCEL_CLI_BIN, "models", "unload", "squeezenet", "--agent-dir", h.agentDir()}, &out, &err), 0)
      << err;
  devices(config, {"--json"}, &out, &err);
  json doc = json::parse(out);
  ASSERT_EQ(doc["devices"].size(), 4u) << out;
  for (const auto& d : doc["devices"])
    EXPECT_EQ(d.at("models").get<std::vector<std::string>>(),
              (std::vector<std::string>{"loose", "pair", "relu", "tiny"}))
        << "each slot's entry names its device's ready models:\n" << out;

  // The admin socket's index of one device's repository holds each model once; of all, once per device.
  auto index = [&](const std::string& repository) {
    auto stub = inference::GRPCInferenceService::NewStub(
        grpc::CreateChannel("unix:" + h.agentDir() + "/admin.sock", grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    inference::RepositoryIndexRequest req;
    req.set_repository_name(repository);
    inference::RepositoryIndexResponse resp;
    grpc::Status s = stub->RepositoryIndex(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << repository << ": " << s.error_message();
    return resp.models_size();
  };
  const int one = index("movidius-ncs2/usb-1-3");
  EXPECT_EQ(one, 5) << "loose, pair, relu, squeezenet (unloaded) and tiny";
  EXPECT_EQ(index(""), 2 * one);

  // Another catalog's class names: the agent serves no such device, and says which it serves.
  const std::string other = h.writeConfig(R"({"builtin": false, "classes": [
    {"name": "ncs2-renamed", "mode": "agent", "backend": "opencv-cpu", "slots": 2, "reenumerates": true,
     "match": [{"subsystem": "usb", "vendor": "03e7", "product": "2485"}]}]})");
  devices(other, {}, &out, &err);
  EXPECT_NE(out.find("ncs2-renamed/usb-1-3: not served by the agent ("), std::string::npos) << out;
  EXPECT_NE(out.find("movidius-ncs2/usb-1-3"), std::string::npos) << "names the devices the agent serves:\n" << out;
  EXPECT_EQ(h.stopAgent(SIGTERM), 0);
}

}  // namespace
}  // namespace kubeaccel::testing
