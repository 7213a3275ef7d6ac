#include "demo_command.hpp"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <algorithm>
#include <iostream>
#include <sstream>
#include <thread>

#include "config/config_loader.hpp"
#include "devices_command.hpp"
#include "plugin_harness.hpp"
#include "util/args.hpp"
#include "util/log.hpp"

namespace kubeaccel {
namespace {

using namespace std::chrono_literals;
using testing::KubeletStandin;
using testing::PluginHarness;
using Clock = std::chrono::steady_clock;

constexpr const char* kHelp = R"(Usage: kubeaccel demo

Runs the main job on an embedded default and narrates each step:
  1. simulated accelerators (a umockdev testbed: an Intel NCS2 stick in agent
     mode and a Coral PCIe card in device mode) are discovered;
  2. the real kubeaccel-plugin registers them with a local kubelet stand-in,
     and keeps the stick's ID and health while its firmware boots;
  3. the stand-in allocates a slot to a pod, and a card to another;
  4. the pod's process runs SqueezeNet (generated, seeded weights) through the
     slot's socket, served by the real kubeaccel-agent on the CPU backend;
  5. teardown.
Needs umockdev (installed by scripts/install-deps); re-runs itself under
umockdev-wrapper. Nothing on the host is touched but a temporary directory.
)";

const std::string kNcs2 = "kubeaccel.io/movidius-ncs2";

constexpr const char* kDemoConfig = R"({"classes": [{"name": "movidius-ncs2", "mode": "agent", "slots": 4,
  "backend": "opencv-cpu", "reenumerates": true, "match": [
  {"subsystem": "usb", "vendor": "03e7", "product": "2485"},
  {"subsystem": "usb", "vendor": "03e7", "product": "f63b"}]}]})";
const std::string kCoral = "kubeaccel.io/coral-pcie";

void step(int n, const std::string& what) { std::cout << "\n[" << n << "/5] " << what << "\n" << std::flush; }
void say(const std::string& what) { std::cout << "      " << what << "\n" << std::flush; }

long msSince(Clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
}

std::string describe(const KubeletStandin::Resource& r) {
  int healthy = 0;
  for (const auto& d : r.devices) healthy += d.health == "Healthy";
  std::string ids;
  for (const auto& d : r.devices) ids += (ids.empty() ? "" : " ") + d.id;
  return std::to_string(r.devices.size()) + " device(s), " + std::to_string(healthy) + " Healthy: " + ids;
}

[[noreturn]] void fail(const std::string& what) { throw std::runtime_error("demo: " + what); }

// Builds the demo's image with scripts/build-test-image; false (and why) when
// podman cannot build or run containers here.
bool buildDemoImage(PluginHarness& node, const std::string& image, std::string* why) {
  ::setenv("CONTAINERS_CONF", (std::string(KUBEACCEL_SOURCE_DIR) + "/scripts/containers.conf").c_str(), 0);
  std::string out, err;
  try {
    if (node.run({"/usr/bin/env", "-u", "LD_PRELOAD", "-u", "UMOCKDEV_DIR", "podman", "--version"}, &out, &err) != 0) {
      *why = "podman is not installed";
      return false;
    }
    if (node.run({std::string(KUBEACCEL_SOURCE_DIR) + "/scripts/build-test-image", KUBEACCEL_BUILD_DIR, image}, &out,
                 &err) != 0) {
      *why = "the image did not build: " + err.substr(0, 200);
      return false;
    }
    if (node.run({"/usr/bin/env", "-u", "LD_PRELOAD", "-u", "UMOCKDEV_DIR", "podman", "run", "--rm", "--network=none", image,
                  "--version"}, &out, &err) != 0) {
      *why = "podman cannot run containers: " + err.substr(0, 200);
      return false;
    }
  } catch (const std::exception& e) {
    *why = e.what();
    return false;
  }
  return true;
}

int runDemo() {
  setupLogging("kubeaccel", "warn");
  std::cout << "kubeaccel demo: simulated accelerators, the real plugin, a local kubelet stand-in\n";
  PluginHarness node;

  step(1, "Plugging simulated accelerators into a umockdev testbed");
  node.plug("movidius-ncs2-unbooted.umockdev");
  say("Intel NCS2 stick, USB 03e7:2485 (firmware not booted), port 1-3");
  node.plug("coral-pcie.umockdev");
  say("Google Coral PCIe card, PCI 1ac1:089a at 0000:03:00.0, node /dev/apex_0");
  // The stick's built-in backend (OpenVINO) is not built in: the demo runs it on the CPU.
  std::string configPath = node.writeConfig(kDemoConfig);
  Config config = loadConfig(configPath);
  say("discovery (the plugin's own code) sees:");
  printDeviceTable(std::cout, config, discoverNow(config), "        ");

  step(2, "Starting kubeaccel-agent and kubeaccel-plugin against the kubelet stand-in");
  say("kubelet socket: " + node.kubelet().socketPath());
  say("the NCS2 class runs on backend opencv-cpu here (OpenVINO is not built in)");
  auto t0 = Clock::now();
  node.startAgent(configPath);
  node.startPlugin(configPath);
  if (!node.kubelet().waitForRegistrations(kNcs2, 1, 10s) || !node.kubelet().waitForRegistrations(kCoral, 1, 10s))
    fail("the plugin did not register; its log:\n" + node.pluginLog());
  node.kubelet().waitFor([](const auto& rs) {
    const auto& d = rs.at(kNcs2).devices;
    return d.size() == 4 && std::all_of(d.begin(), d.end(), [](const auto& x) { return x.health == "Healthy"; });
  }, 20s);
  auto rs = node.kubelet().resources();
  say("registered in " + std::to_string(msSince(t0)) + " ms; the stand-in dialled back and opened ListAndWatch:");
  say("  " + kNcs2 + ": " + describe(rs[kNcs2]));
  say("  " + kCoral + ": " + describe(rs[kCoral]));
  say("the stick's firmware boots: it leaves port 1-3 as 03e7:2485 (480 Mbps) and comes back as 03e7:f63b");
  say("at 5000 Mbps on port 2-1, the USB 3 half of the same socket (usb1-port3 and usb2-port1 are peers)");
  int updates = rs[kNcs2].updates;
  node.unplug("/sys/devices/pci0000:00/0000:00:14.0/usb1/1-3");
  node.plug("movidius-ncs2-booted-usb3.umockdev");
  std::this_thread::sleep_for(200ms);
  rs = node.kubelet().resources();
  say("  " + kNcs2 + ": " + describe(rs[kNcs2]));
  say(rs[kNcs2].updates == updates ? "  same IDs, still Healthy, no ListAndWatch message: the kubelet saw nothing"
                                   : "  the kubelet was sent " + std::to_string(rs[kNcs2].updates - updates) +
                                         " message(s) during re-enumeration");

  step(3, "A pod asks for " + kNcs2 + ": 1, another for " + kCoral + ": 1");
  std::vector<std::string> available;
  for (const auto& d : rs[kNcs2].devices) available.push_back(d.id);
  std::vector<std::string> chosen;
  if (!node.kubelet().preferredAllocation(kNcs2, available, {}, 1, &chosen).ok() || chosen.size() != 1)
    fail("GetPreferredAllocation failed");
  say("GetPreferredAllocation chose " + chosen[0]);
  t0 = Clock::now();
  v1beta1::AllocateResponse resp;
  grpc::Status s = node.kubelet().allocate(kNcs2, chosen, &resp);
  if (!s.ok()) fail("Allocate failed: " + s.error_message());
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count();
  say("Allocate answered in " + std::to_string(us) + " us; the container gets:");
  const auto& c = resp.container_responses(0);
  for (const auto& m : c.mounts())
    say("  mount " + m.host_path() + " at " + m.container_path() + (m.read_only() ? " (ro)" : " (rw)"));
  for (const auto& [k, v] : c.envs()) say("  env " + k + "=" + v);
  say("  devices: " + std::to_string(c.devices_size()) + " (no device node, no privilege)");
  v1beta1::AllocateResponse cardResp;
  s = node.kubelet().allocate(kCoral, {"0000-03-00.0"}, &cardResp);
  if (!s.ok()) fail("Allocate of the card failed: " + s.error_message());
  for (const auto& d : cardResp.container_responses(0).devices())
    say("the card's pod gets device " + d.host_path() + " (" + d.permissions() + ")");

  step(4, "The pod's container runs inference through its slot socket");
  std::string image = "localhost/kubeaccel-demo:dev";
  std::string why;
  if (buildDemoImage(node, image, &why)) {
    say("image " + image + ", built FROM scratch from this build's binaries (no registry)");
    // The AllocateResponse, as a container runtime would apply it, and nothing more.
    // podman runs outside umockdev's preload: it must see the real /sys.
    std::vector<std::string> podman = {"/usr/bin/env", "-u", "LD_PRELOAD", "-u", "UMOCKDEV_DIR", "podman", "run",
                                       "--rm", "--network=none", "--cap-drop=ALL",
                                       "--security-opt", "no-new-privileges", "--read-only", "--user", "65534:65534"};
    for (const auto& m : c.mounts())
      podman.push_back("-v"), podman.push_back(m.host_path() + ":" + m.container_path() + (m.read_only() ? ":ro" : ""));
    for (const auto& [k, v] : c.envs()) podman.push_back("-e"), podman.push_back(k + "=" + v);
    podman.push_back(image);
    std::string shown;
    for (size_t i = 5; i + 1 < podman.size(); ++i) shown += (shown.empty() ? "" : " ") + podman[i];
    say("$ " + shown + " ...");
    for (const char* mode : {"", "--shm"}) {
      std::vector<std::string> argv = podman;
      argv.insert(argv.end(), {"infer", "--model", "squeezenet"});
      if (*mode) argv.push_back(mode);
      std::string out, err;
      if (int rc = node.run(argv, &out, &err); rc != 0)
        fail("the container's kubeaccel infer failed (exit " + std::to_string(rc) + "): " + err + out);
      say(std::string("kubeaccel infer --model squeezenet ") + mode + " (in the container):");
      std::istringstream lines(out);
      for (std::string line; std::getline(lines, line);) say("  " + line);
    }
    std::string out, err;
    std::vector<std::string> outsider = {"/usr/bin/env", "-u", "LD_PRELOAD", "-u", "UMOCKDEV_DIR", "podman", "run",
                                         "--rm", "--network=none", image, "infer", "--socket",
                                         "unix:///run/kubeaccel/inference.sock", "--model", "squeezenet"};
    bool reached = node.run(outsider, &out, &err) == 0;
    say(reached ? "!! a container without the mount reached the agent" : "a container without the mount cannot reach the agent");
    if (reached) fail("a container without the slot mount reached the agent");
  } else {
    // No container runtime: a plain process stands in for the pod and uses the host side of its mount.
    std::string slotDir = c.mounts(0).host_path();
    say("podman is not usable here (" + why + "): a plain process stands in for the container,");
    say("connecting through the host side of its mount, " + slotDir);
    std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
    for (const char* mode : {"", "--shm"}) {
      std::vector<std::string> argv = {self, "infer", "--socket", "unix://" + slotDir + "/inference.sock", "--model",
                                       "squeezenet"};
      if (*mode) argv.push_back(mode);
      std::string out, err;
      if (node.run(argv, &out, &err) != 0) fail(std::string("kubeaccel infer failed: ") + err);
      say(std::string("kubeaccel infer --model squeezenet ") + mode + ":");
      std::istringstream lines(out);
      for (std::string line; std::getline(lines, line);) say("  " + line);
    }
  }

  step(5, "Teardown");
  int rc = node.stopPlugin(SIGTERM);
  int agentRc = node.stopAgent(SIGTERM);
  say("SIGTERM: the agent exited " + std::to_string(agentRc) + "; the slot directory stays for the next agent");
  std::string left;
  for (const auto& f : node.socketsInDevicePluginDir()) left += (left.empty() ? "" : ", ") + f;
  say("SIGTERM: the plugin exited " + std::to_string(rc) + "; sockets left in device-plugins/: " + left);
  std::cout << "\nDemo finished.\n";
  return rc == 0 && agentRc == 0 ? kExitOk : kExitFailure;
}

}  // namespace

int demoCommand(int argc, char** argv) {
  Args args(argc, argv, 2, {}, {"help"});
  if (args.has("help")) {
    std::cout << kHelp;
    return kExitOk;
  }
  if (!args.positional().empty()) throw UsageError("demo: unexpected argument '" + args.positional()[0] + "'");
  const char* preload = std::getenv("LD_PRELOAD");
  if (!preload || !std::strstr(preload, "umockdev")) {
    // The simulated devices need umockdev's preload in this process and the plugin's.
    std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
    std::vector<char*> args{const_cast<char*>("umockdev-wrapper"), self.data()};
    for (int i = 1; i < argc; ++i) args.push_back(argv[i]);
    args.push_back(nullptr);
    ::execvp("umockdev-wrapper", args.data());
    throw std::runtime_error(std::string("cannot run umockdev-wrapper (install umockdev): ") + std::strerror(errno));
  }
  return runDemo();
}

}  // namespace kubeaccel
