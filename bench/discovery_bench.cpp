// Discovery of 1,000 matching devices in a umockdev testbed: time from the
// plugin's start to its first ListAndWatch message, and its peak memory.
// Run under umockdev-wrapper:  umockdev-wrapper build/bench/discovery_bench [N]
#include <sys/types.h>

#include <signal.h>

#include <charconv>
#include <cstring>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "plugin_harness.hpp"
#include "report.hpp"

using namespace std::chrono_literals;
using kubeaccel::testing::KubeletStandin;
using kubeaccel::testing::PluginHarness;

namespace {

// N Hailo-8 cards behind the Hailo testbed's bridge (0000:00:1c.4), each a
// bare PCI function as the kernel lists it.
std::string cards(int n) {
  std::ostringstream out;
  for (int i = 0; i < n; ++i) {
    char bdf[16];
    std::snprintf(bdf, sizeof bdf, "0000:%02x:%02x.%x", 0x10 + i / 32, i % 32, 0);
    out << "P: /devices/pci0000:00/0000:00:1c.4/" << bdf << "\n"
        << "E: DRIVER=hailo\nE: PCI_CLASS=B4000\nE: PCI_ID=1E60:2864\nE: PCI_SLOT_NAME=" << bdf
        << "\nE: SUBSYSTEM=pci\nA: class=0x0b4000\nA: device=0x2864\nA: vendor=0x1e60\nA: numa_node=0\n\n";
  }
  return out.str();
}

long statusKiB(pid_t pid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind(key + ":", 0) == 0) return std::stol(line.substr(key.size() + 1));
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  int n = 1000;
  if (argc > 1) std::from_chars(argv[1], argv[1] + std::strlen(argv[1]), n);
  std::string out = argc > 2 ? argv[2] : KUBEACCEL_BENCH_RESULTS;
  const std::string resource = "kubeaccel.io/hailo8";
  kubeaccel::bench::Report report("discovery_bench");
  try {
    PluginHarness h;
    h.plug("hailo8.umockdev");  // the bridge and one real-looking card
    auto t = std::chrono::steady_clock::now();
    h.plugText(cards(n - 1));
    std::cerr << "testbed: " << n << " cards in "
              << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t).count()
              << " ms\n";

    auto t0 = std::chrono::steady_clock::now();
    h.startPlugin("", {"--log-level", "info"});
    bool ok = h.kubelet().waitFor(
        [&](const auto& rs) {
          auto it = rs.find(resource);
          return it != rs.end() && it->second.updates > 0;
        },
        60s);
    if (!ok) throw std::runtime_error("no ListAndWatch message within 60 s\n" + h.pluginLog());
    auto rs = h.kubelet().resources();
    const auto& r = rs[resource];
    double registered = std::chrono::duration<double, std::milli>(r.lastRegistered - t0).count();
    double first = std::chrono::duration<double, std::milli>(r.lastUpdate - t0).count();
    long hwm = statusKiB(h.pluginPid(), "VmHWM");
    long rss = statusKiB(h.pluginPid(), "VmRSS");
    report.info("devices in the testbed", std::to_string(n), "count");
    report.info("devices in the first ListAndWatch message", std::to_string(r.devices.size()), "count");
    report.info("start -> registered", std::to_string(registered), "ms");
    report.target("start -> first ListAndWatch message", std::to_string(first), "ms", "< 200", first < 200);
    report.info("peak memory (VmHWM)", std::to_string(hwm / 1024.0), "MiB");
    report.info("resident memory after (VmRSS)", std::to_string(rss / 1024.0), "MiB");
    if (static_cast<int>(r.devices.size()) != n)
      report.finding("the first message listed " + std::to_string(r.devices.size()) + " of " + std::to_string(n) +
                     " devices");
    h.stopPlugin(SIGTERM);
  } catch (const std::exception& e) {
    std::cerr << "discovery_bench: " << e.what() << "\n";
    return 1;
  }
  report.print();
  report.writeCsv(out + "/discovery.csv");
  report.mergeInto(out + "/summary.csv", "discovery: ");
  return 0;
}
