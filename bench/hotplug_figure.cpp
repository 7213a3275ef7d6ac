// Figure 1: how long a hotplug takes to reach the kubelet, with graceWindowMs 0
// (a removed card is dropped at once). A sample runs from just before the
// event is made to the stand-in's receipt of the ListAndWatch message that
// reflects it (add: hailo8 Healthy; remove: hailo8 gone). Two ways of making
// the event, `hotplugCycles` add/remove cycles each:
//  - uevent:  umockdev_testbed_uevent("remove"/"add") on the hailo8 card that
//             stays in sysfs: the uevent alone, what the target is about;
//  - testbed: PluginHarness::plug()/unplug(), which also writes (or removes)
//             the card's sysfs tree and device node, as the kernel would; the
//             testbed's own work is inside the sample (call_ms says how much).
#include <cstdio>
#include <stdexcept>
#include <vector>

#include "figures.hpp"
#include "plugin_harness.hpp"
#include "stats.hpp"

namespace kubeaccel::bench {
namespace {

using Clock = std::chrono::steady_clock;
const std::string kHailo = "kubeaccel.io/hailo8";
const std::string kHailoId = "0000-04-00.0";
const std::string kHailoSyspath = "/sys/devices/pci0000:00/0000:00:1c.4/0000:04:00.0";
constexpr double kPollIntervalMs = 5000;  // what polling device plugins use

int updatesOf(const Resources& rs) {
  auto it = rs.find(kHailo);
  return it == rs.end() ? 0 : it->second.updates;
}

bool hailoHealthy(const Resources& rs) {
  auto it = rs.find(kHailo);
  if (it == rs.end()) return false;
  for (const auto& d : it->second.devices)
    if (d.id == kHailoId) return d.health == "Healthy";
  return false;
}

bool hailoGone(const Resources& rs) {
  auto it = rs.find(kHailo);
  return it != rs.end() && it->second.devices.empty();
}

enum class Method { Uevent, Testbed };

struct Sample {
  double latencyMs, callMs;
  bool ok;
};

// One add or remove of hailo8, timed until the stand-in has the new state.
Sample step(testing::PluginHarness& h, Method method, bool add) {
  int before = updatesOf(h.kubelet().resources());
  auto t0 = Clock::now();
  if (method == Method::Uevent)
    h.uevent(kHailoSyspath, add ? "add" : "remove");
  else if (add)
    h.plug("hailo8.umockdev");
  else
    h.unplug(kHailoSyspath);
  auto t1 = Clock::now();
  bool ok = h.kubelet().waitFor(
      [&](const Resources& rs) { return updatesOf(rs) > before && (add ? hailoHealthy(rs) : hailoGone(rs)); },
      std::chrono::seconds(5));
  double latency = millisBetween(t0, ok ? h.kubelet().resources()[kHailo].lastUpdate : Clock::now());
  return {latency, millisBetween(t0, t1), ok};
}

struct Series {
  std::vector<double> all, add, remove, calls;
  int timeouts = 0;
};

}  // namespace

void hotplugFigure(const Options& o, Report& r) {
  std::printf("\n[1] uevent -> ListAndWatch: hailo8 added/removed %d times by uevent and %d times by plug()/unplug(), "
              "graceWindowMs 0\n",
              o.hotplugCycles, o.hotplugCycles);
  testing::PluginHarness h;
  h.plug("coral-pcie.umockdev");  // a registered, idle plugin before the first hotplug
  h.startPlugin(h.writeConfig(R"({"graceWindowMs": 0})"));
  if (!h.kubelet().waitForRegistrations("kubeaccel.io/coral-pcie", 1, kSetupTimeout))
    throw std::runtime_error("hotplug: the plugin did not register coral-pcie\n" + h.pluginLog());
  // Warm-up, not counted: the first hailo8 also registers its resource.
  if (!step(h, Method::Testbed, true).ok || !h.kubelet().waitForRegistrations(kHailo, 1, kSetupTimeout))
    throw std::runtime_error("hotplug: the warm-up plug did not reach ListAndWatch\n" + h.pluginLog());

  CsvFile csv(o.outDir + "/hotplug.csv", {"method", "cycle", "action", "latency_ms", "call_ms", "ok"});
  Series series[2];
  // The card is plugged in here; each cycle removes it and adds it back.
  for (Method m : {Method::Uevent, Method::Testbed}) {
    Series& s = series[static_cast<int>(m)];
    for (int i = 0; i < o.hotplugCycles; ++i) {
      for (bool add : {false, true}) {
        Sample x = step(h, m, add);
        csv << std::vector<std::string>{m == Method::Uevent ? "uevent" : "testbed", std::to_string(i),
                                        add ? "add" : "remove", fixed(x.latencyMs, 4), fixed(x.callMs, 4),
                                        x.ok ? "1" : "0"};
        if (!x.ok) {
          ++s.timeouts;
          continue;
        }
        s.all.push_back(x.latencyMs);
        (add ? s.add : s.remove).push_back(x.latencyMs);
        s.calls.push_back(x.callMs);
      }
    }
  }
  int registrations = h.kubelet().resources()[kHailo].registrations;

  const Series& u = series[0];
  const Series& t = series[1];
  auto du = distribution(u.all), dt = distribution(t.all);
  std::printf("    uevent            %s\n", describe(du, "ms").c_str());
  std::printf("      add             %s\n", describe(distribution(u.add), "ms").c_str());
  std::printf("      remove          %s\n", describe(distribution(u.remove), "ms").c_str());
  std::printf("    plug()/unplug()   %s\n", describe(dt, "ms").c_str());
  std::printf("      plug            %s\n", describe(distribution(t.add), "ms").c_str());
  std::printf("      unplug          %s\n", describe(distribution(t.remove), "ms").c_str());
  std::printf("      the call alone  %s\n", describe(distribution(t.calls), "ms").c_str());
  std::printf("    5 s polling       min 0.00 ms  p50 2500.00 ms  p99 4950.00 ms  max 5000.00 ms  mean 2500.00 ms "
              "(uniform over the interval)\n");
  if (du.n > 0 && dt.n > 0)
    std::printf("    -> at p99, 5 s polling is %.0fx slower than the uevent path and %.0fx slower than plug()/unplug()\n",
                0.99 * kPollIntervalMs / du.p99, 0.99 * kPollIntervalMs / dt.p99);
  std::printf("    samples: %s\n", csv.path().c_str());

  r.info("uevent->ListAndWatch min", fixed(du.min, 2), "ms");
  r.info("uevent->ListAndWatch p50", fixed(du.p50, 2), "ms");
  r.info("uevent->ListAndWatch p90", fixed(du.p90, 2), "ms");
  r.target("uevent->ListAndWatch p99", fixed(du.p99, 2), "ms", "< 10", du.n > 0 && du.p99 < 10);
  r.info("uevent->ListAndWatch max", fixed(du.max, 2), "ms");
  r.info("uevent->ListAndWatch mean", fixed(du.mean, 2), "ms");
  r.info("plug()/unplug()->ListAndWatch p50", fixed(dt.p50, 2), "ms");
  r.target("plug()/unplug()->ListAndWatch p99", fixed(dt.p99, 2), "ms", "< 10", dt.n > 0 && dt.p99 < 10);
  r.info("plug()/unplug()->ListAndWatch max", fixed(dt.max, 2), "ms");
  r.info("testbed plug()/unplug() call p50", fixed(distribution(t.calls).p50, 2), "ms");
  r.info("5 s polling mean (reference)", fixed(0.5 * kPollIntervalMs, 0), "ms");
  r.info("5 s polling p99 (reference)", fixed(0.99 * kPollIntervalMs, 0), "ms");
  r.target("hotplug timeouts (5 s)", std::to_string(u.timeouts + t.timeouts), "count", "0",
           u.timeouts + t.timeouts == 0);
  if (registrations != 1)
    r.finding("hotplug: hailo8 registered " + std::to_string(registrations) +
              " times over the cycles; a resource should register once");
}

}  // namespace kubeaccel::bench
