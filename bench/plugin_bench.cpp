// plugin_bench: the end-to-end figures of kubeaccel-plugin against a umockdev
// testbed and the kubelet stand-in. Prints each figure, writes per-sample CSV
// and summary.csv under --out, and ends with a summary table. Targets are
// goals: a missed one is printed as a finding and the exit status stays 0
// (1 only when a benchmark could not run, 2 on bad usage).
//
//   umockdev-wrapper build/bench/plugin_bench [--cycles 200] [--restarts 20]
//       [--allocations 5000] [--settle 2] [--idle 10] [--only hotplug,restart,allocate,idle] [--out DIR]
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "figures.hpp"
#include "stats.hpp"

namespace {

constexpr const char* kUsage = R"(Usage: umockdev-wrapper plugin_bench [FLAGS]

End-to-end benchmarks of kubeaccel-plugin (umockdev testbed + kubelet stand-in).

Flags:
  --cycles N        hotplug plug/unplug cycles of hailo8 (default 200)
  --restarts N      kubelet restarts (default 20)
  --allocations N   sequential Allocate calls (default 5000)
  --settle S        seconds of rest before reading memory (default 2)
  --idle S          seconds over which idle wake-ups are counted (default 10)
  --only LIST       comma-separated subset of hotplug,restart,allocate,idle
  --out DIR         where the CSV files go (default the source tree's bench/results)
  --help
)";

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr, "plugin_bench: %s\n", why.c_str());
  std::exit(2);
}

double number(const std::string& flag, const char* text, double min) {
  char* end = nullptr;
  double v = std::strtod(text, &end);
  if (!end || *end || v < min) usage(flag + ": expected a number >= " + std::to_string(int(min)) + ", got '" + text + "'");
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace kubeaccel::bench;
  Options o;
  o.outDir = KUBEACCEL_BENCH_RESULTS;
  const std::set<std::string> known = {"hotplug", "restart", "allocate", "idle"};
  std::set<std::string> only;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::printf("%s", kUsage);
      return 0;
    }
    if (i + 1 >= argc) usage("unknown flag or missing value: " + a);
    const char* v = argv[++i];
    if (a == "--cycles") o.hotplugCycles = static_cast<int>(number(a, v, 1));
    else if (a == "--restarts") o.restarts = static_cast<int>(number(a, v, 1));
    else if (a == "--allocations") o.allocations = static_cast<int>(number(a, v, 1));
    else if (a == "--settle") o.settleSeconds = number(a, v, 0);
    else if (a == "--idle") o.idleSeconds = number(a, v, 1);
    else if (a == "--out") o.outDir = v;
    else if (a == "--only") {
      std::stringstream ss(v);
      for (std::string f; std::getline(ss, f, ',');) {
        if (!known.count(f)) usage("--only: unknown figure '" + f + "'");
        only.insert(f);
      }
    } else {
      usage("unknown flag " + a);
    }
  }
  const char* preload = std::getenv("LD_PRELOAD");
  if (!preload || !std::strstr(preload, "umockdev"))
    usage("run me under umockdev-wrapper (umockdev-wrapper plugin_bench ...): the testbed needs its preload");
  std::error_code ec;
  std::filesystem::create_directories(o.outDir, ec);
  if (ec) usage("--out: cannot create " + o.outDir + ": " + ec.message());

  Report report;
  // The figures are latencies on a shared machine: say how busy it was.
  auto loadavg = [] {
    std::ifstream in("/proc/loadavg");
    double one = -1;
    in >> one;
    return one;
  };
  double loadBefore = loadavg();
  std::printf("plugin_bench: %u CPUs, load average %.2f; CSV files go to %s\n", std::thread::hardware_concurrency(),
              loadBefore, o.outDir.c_str());
  const std::pair<const char*, std::function<void(const Options&, Report&)>> figures[] = {
      {"hotplug", hotplugFigure}, {"restart", restartFigure}, {"allocate", allocateFigure}, {"idle", idleFigure}};
  int failed = 0;
  for (const auto& [name, run] : figures) {
    if (!only.empty() && !only.count(name)) continue;
    try {
      run(o, report);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "plugin_bench: %s: %s\n", name, e.what());
      report.finding(std::string(name) + " could not run: " + e.what());
      ++failed;
    }
  }
  report.info("CPUs", std::to_string(std::thread::hardware_concurrency()), "count");
  report.info("load average (1 min) before", fixed(loadBefore, 2), "");
  report.info("load average (1 min) after", fixed(loadavg(), 2), "");
  report.writeCsv(o.outDir + "/summary.csv");
  report.print();
  std::printf("summary: %s/summary.csv\n", o.outDir.c_str());
  return failed ? 1 : 0;
}
