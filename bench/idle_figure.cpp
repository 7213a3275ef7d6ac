// Figures 4 and 5: the plugin at rest. Eight device files are plugged (two
// functions of the Alveo card among them), the plugin registers every class
// and is left alone for `settleSeconds`; then its VmRSS/VmHWM and thread count
// are read from /proc, and for `idleSeconds` each thread's context switches
// (voluntary + nonvoluntary) are sampled once a second. A thread blocked for
// good (epoll_wait with no timeout, a condition variable) adds none; a thread
// with a timer adds some every period.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "figures.hpp"
#include "plugin_harness.hpp"
#include "proc_stats.hpp"
#include "stats.hpp"

namespace kubeaccel::bench {
namespace {

const std::vector<std::string> kFiles = {
    "movidius-ncs.umockdev", "movidius-ncs2-unbooted.umockdev", "coral-usb-unbooted.umockdev", "coral-pcie.umockdev",
    "hailo8.umockdev",       "intel-fpga-pac.umockdev",         "xilinx-alveo.umockdev",      "accel.umockdev"};
const std::vector<std::string> kClasses = {"movidius-ncs", "movidius-ncs2",  "coral-usb",    "coral-pcie",
                                           "hailo8",       "intel-fpga-pac", "xilinx-alveo", "accel"};
constexpr double kMiB = 1024.0;

// A device's ID without its slot suffix ("usb-1-3-s2" -> "usb-1-3").
std::string physicalOf(const std::string& id) {
  auto pos = id.rfind("-s");
  if (pos != std::string::npos && pos + 2 < id.size() && id.find_first_not_of("0123456789", pos + 2) == std::string::npos)
    return id.substr(0, pos);
  return id;
}

// The plugin's pid: from the harness where it has an accessor, else from /proc
// (the child of this process named kubeaccel-plugin).
template <typename Harness>
pid_t pluginPidOf(const Harness& h) {
  if constexpr (requires { h.pluginPid(); })
    return h.pluginPid();
  else
    return findChild(::getpid(), "kubeaccel-plug");
}

struct ThreadTally {
  std::string comm;
  long wakeups = 0;
  int activeIntervals = 0;
};

}  // namespace

void idleFigure(const Options& o, Report& r) {
  std::printf("\n[4] idle plugin with 8 device files: resident memory after %.0f s of rest\n", o.settleSeconds);
  testing::PluginHarness h;
  for (const auto& f : kFiles) h.plug(f);
  h.startPlugin("");
  bool allRegistered = h.kubelet().waitFor(
      [](const Resources& rs) {
        for (const auto& c : kClasses) {
          auto it = rs.find("kubeaccel.io/" + c);
          if (it == rs.end() || it->second.updates == 0 || !it->second.streamOpen) return false;
        }
        return true;
      },
      kSetupTimeout);
  Resources rs = h.kubelet().resources();
  int advertised = 0;
  std::set<std::string> physical;
  std::string perResource;
  for (const auto& [name, res] : rs) {
    advertised += static_cast<int>(res.devices.size());
    for (const auto& d : res.devices) physical.insert(name + "/" + physicalOf(d.id));
    perResource += "      " + name + ": " + std::to_string(res.devices.size()) + " advertised (";
    for (size_t i = 0; i < res.devices.size(); ++i) perResource += (i ? " " : "") + res.devices[i].id;
    perResource += ")\n";
  }
  if (!allRegistered)
    r.finding("idle: not every one of the 8 classes registered within 15 s (" + std::to_string(rs.size()) +
              " did)");
  std::printf("    %zu resources registered, %zu physical devices, %d advertised IDs (slots count one each):\n%s",
              rs.size(), physical.size(), advertised, perResource.c_str());

  std::this_thread::sleep_for(std::chrono::duration<double>(o.settleSeconds));
  pid_t pid = pluginPidOf(h);
  if (pid <= 0) throw std::runtime_error("idle: cannot find the kubeaccel-plugin process");
  MemoryStatus m = readMemoryStatus(pid);
  double rssMiB = m.vmRssKiB / kMiB;
  std::printf("    pid %d: VmRSS %.2f MiB (RssAnon %.2f, RssFile %.2f), VmHWM %.2f MiB, VmSize %.1f MiB, %d threads\n",
              pid, rssMiB, m.rssAnonKiB / kMiB, m.rssFileKiB / kMiB, m.vmHwmKiB / kMiB, m.vmSizeKiB / kMiB,
              m.threads);
  {
    CsvFile csv(o.outDir + "/idle-memory.csv",
                {"resources", "physical_devices", "advertised_ids", "vmrss_kib", "vmhwm_kib", "rssanon_kib",
                 "rssfile_kib", "vmsize_kib", "threads"});
    csv << std::vector<std::string>{std::to_string(rs.size()),  std::to_string(physical.size()),
                                    std::to_string(advertised), std::to_string(m.vmRssKiB),
                                    std::to_string(m.vmHwmKiB), std::to_string(m.rssAnonKiB),
                                    std::to_string(m.rssFileKiB), std::to_string(m.vmSizeKiB),
                                    std::to_string(m.threads)};
  }
  {
    auto maps = readRssByMapping(pid);
    CsvFile csv(o.outDir + "/idle-memory-maps.csv", {"mapping", "rss_kib"});
    std::string top;
    for (size_t i = 0; i < maps.size(); ++i) {
      csv << std::vector<std::string>{maps[i].name, std::to_string(maps[i].rssKiB)};
      if (i < 8) top += "      " + fixed(maps[i].rssKiB / kMiB, 2) + " MiB  " + maps[i].name + "\n";
    }
    std::printf("    largest resident mappings:\n%s", top.c_str());
  }
  r.info("idle: resources registered", std::to_string(rs.size()), "count");
  r.info("idle: physical devices advertised", std::to_string(physical.size()), "count");
  r.info("idle: advertised IDs (incl. slots)", std::to_string(advertised), "count");
  r.target("idle VmRSS", fixed(rssMiB, 2), "MiB", "< 10", m.vmRssKiB >= 0 && rssMiB < 10);
  r.info("idle VmRSS anonymous part", fixed(m.rssAnonKiB / kMiB, 2), "MiB");
  r.info("idle VmHWM", fixed(m.vmHwmKiB / kMiB, 2), "MiB");
  r.info("idle threads", std::to_string(m.threads), "count");

  // Figure 5.
  int seconds = std::max(1, static_cast<int>(o.idleSeconds + 0.5));
  std::printf("\n[5] idle wake-ups: context switches per thread over %d s\n", seconds);
  size_t logBefore = h.pluginLog().size();
  std::map<pid_t, ThreadTally> tally;
  CsvFile csv(o.outDir + "/idle-wakeups.csv", {"second", "tid", "comm", "voluntary", "nonvoluntary"});
  auto previous = readThreadSwitches(pid);
  for (const auto& t : previous) tally[t.tid].comm = t.comm;
  auto start = std::chrono::steady_clock::now();
  for (int s = 1; s <= seconds; ++s) {
    std::this_thread::sleep_until(start + std::chrono::seconds(s));
    auto now = readThreadSwitches(pid);
    std::map<pid_t, ThreadSwitches> before;
    for (const auto& t : previous) before[t.tid] = t;
    for (const auto& t : now) {
      auto b = before.find(t.tid);
      long dv = t.voluntary - (b == before.end() ? 0 : b->second.voluntary);
      long dn = t.nonvoluntary - (b == before.end() ? 0 : b->second.nonvoluntary);
      csv << std::vector<std::string>{std::to_string(s), std::to_string(t.tid), t.comm, std::to_string(dv),
                                      std::to_string(dn)};
      auto& ty = tally[t.tid];
      ty.comm = t.comm;
      ty.wakeups += dv + dn;
      if (dv + dn > 0) ++ty.activeIntervals;
    }
    previous = std::move(now);
  }
  size_t logGrowth = h.pluginLog().size() - logBefore;

  CsvFile threads(o.outDir + "/idle-wakeups-threads.csv",
                  {"tid", "comm", "wakeups", "wakeups_per_s", "active_seconds", "periodic"});
  long total = 0;
  std::vector<std::string> periodic;
  std::printf("    %-8s %-16s %8s %10s %14s\n", "tid", "thread", "wakeups", "per second", "active seconds");
  for (const auto& [tid, t] : tally) {
    total += t.wakeups;
    // Woke in at least half of the one-second intervals: a timer, not an event.
    bool isPeriodic = t.activeIntervals * 2 >= seconds && t.activeIntervals >= 2;
    double rate = static_cast<double>(t.wakeups) / seconds;
    threads << std::vector<std::string>{std::to_string(tid), t.comm, std::to_string(t.wakeups), fixed(rate, 2),
                                        std::to_string(t.activeIntervals), isPeriodic ? "1" : "0"};
    std::printf("    %-8d %-16s %8ld %10.2f %10d/%-3d%s\n", tid, t.comm.c_str(), t.wakeups, rate, t.activeIntervals,
                seconds, isPeriodic ? "  periodic" : "");
    if (isPeriodic) periodic.push_back(t.comm + " (tid " + std::to_string(tid) + ") " + fixed(rate, 1) + "/s");
  }
  double totalRate = static_cast<double>(total) / seconds;
  std::printf("    total %.2f wake-ups/s; the plugin log grew by %zu bytes meanwhile\n", totalRate, logGrowth);
  std::printf("    samples: %s, %s\n", csv.path().c_str(), threads.path().c_str());

  r.info("idle wake-ups, all threads", fixed(totalRate, 2), "1/s");
  r.target("idle threads waking periodically", std::to_string(periodic.size()), "count", "0 (none periodic)",
           periodic.empty());
  for (const auto& p : periodic) r.finding("idle: thread " + p + " wakes periodically");
  if (logGrowth > 0) r.finding("idle: the plugin logged " + std::to_string(logGrowth) + " bytes while idle");
}

}  // namespace kubeaccel::bench
