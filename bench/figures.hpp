#pragma once
// The end-to-end figures of plugin_bench. Each runs the real kubeaccel-plugin
// binary in its own PluginHarness (umockdev testbed + kubelet stand-in),
// writes its samples as CSV under Options::outDir, prints what it measured
// and adds its rows to the report.

#include <chrono>
#include <map>
#include <string>

#include "kubelet_standin.hpp"
#include "report.hpp"

namespace kubeaccel::bench {

struct Options {
  int hotplugCycles = 200;  // plug + unplug of hailo8
  int restarts = 20;        // kubelet restarts
  int allocations = 5000;   // sequential Allocate calls
  double settleSeconds = 2;  // idle time before the memory reading
  double idleSeconds = 10;   // window of the wake-up count
  std::string outDir;
};

// 1. uevent -> ListAndWatch message, next to 5 s polling.
void hotplugFigure(const Options& o, Report& r);
// 2. kubelet restart -> every resource registered again with its stream open.
void restartFigure(const Options& o, Report& r);
// 3. Allocate (and GetPreferredAllocation) round trip.
void allocateFigure(const Options& o, Report& r);
// 4 and 5. Resident memory with 8 devices, then wake-ups while idle.
void idleFigure(const Options& o, Report& r);

// Shared by the figures.
using Resources = std::map<std::string, testing::KubeletStandin::Resource>;
inline constexpr auto kSetupTimeout = std::chrono::seconds(15);

inline double millisBetween(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

}  // namespace kubeaccel::bench
