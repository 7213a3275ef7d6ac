// Figure 3: Allocate round trip on coral-pcie, sequential, through one
// channel made up front (PluginClient), after a warm-up. GetPreferredAllocation
// on movidius-ncs2's 4 slots is timed the same way, and a few hundred Allocate
// calls through the stand-in (a new stub per call, as kubelet().allocate does)
// show what that path adds.
#include <algorithm>
#include <cstdio>
#include <stdexcept>
#include <vector>

#include "figures.hpp"
#include "plugin_client.hpp"
#include "plugin_harness.hpp"
#include "stats.hpp"

namespace kubeaccel::bench {
namespace {

using Clock = std::chrono::steady_clock;
const std::string kCoral = "kubeaccel.io/coral-pcie";
const std::string kNcs2 = "kubeaccel.io/movidius-ncs2";
const std::vector<std::string> kCoralIds = {"0000-03-00.0"};
const std::vector<std::string> kNcs2Slots = {"usb-1-3-s0", "usb-1-3-s1", "usb-1-3-s2", "usb-1-3-s3"};
constexpr int kWarmup = 200;

double micros(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::micro>(b - a).count();
}

// Times `n` calls of `call` (which returns a grpc::Status) after a warm-up.
template <typename Call>
std::vector<double> timeCalls(int n, Call call, const char* what) {
  for (int i = 0; i < kWarmup; ++i)
    if (grpc::Status s = call(); !s.ok()) throw std::runtime_error(std::string(what) + " failed: " + s.error_message());
  std::vector<double> out;
  out.reserve(n);
  for (int i = 0; i < n; ++i) {
    auto t0 = Clock::now();
    grpc::Status s = call();
    auto t1 = Clock::now();
    if (!s.ok()) throw std::runtime_error(std::string(what) + " failed: " + s.error_message());
    out.push_back(micros(t0, t1));
  }
  return out;
}

}  // namespace

void allocateFigure(const Options& o, Report& r) {
  std::printf("\n[3] Allocate round trip: %d sequential calls on coral-pcie after %d warm-up calls\n", o.allocations,
              kWarmup);
  testing::PluginHarness h;
  h.plug("coral-pcie.umockdev");
  h.plug("movidius-ncs2-unbooted.umockdev");
  h.startPlugin("");
  for (const auto& res : {kCoral, kNcs2})
    if (!h.kubelet().waitForRegistrations(res, 1, kSetupTimeout))
      throw std::runtime_error("allocate: the plugin did not register " + res + "\n" + h.pluginLog());

  PluginClient coral(h.devicePluginDir() + "/kubeaccel-coral-pcie.sock");
  PluginClient ncs2(h.devicePluginDir() + "/kubeaccel-movidius-ncs2.sock");
  auto allocate = timeCalls(o.allocations, [&] { return coral.allocate(kCoralIds); }, "Allocate");
  auto preferred = timeCalls(o.allocations, [&] { return ncs2.preferredAllocation(kNcs2Slots, 1); },
                             "GetPreferredAllocation");
  int viaStandinCalls = std::max(1, o.allocations / 10);
  auto viaStandin = timeCalls(viaStandinCalls, [&] {
    v1beta1::AllocateResponse resp;
    return h.kubelet().allocate(kCoral, kCoralIds, &resp);
  }, "Allocate via the stand-in");

  CsvFile csv(o.outDir + "/allocate.csv", {"call", "i", "latency_us"});
  auto write = [&](const char* name, const std::vector<double>& v) {
    for (size_t i = 0; i < v.size(); ++i) csv << std::vector<std::string>{name, std::to_string(i), fixed(v[i], 3)};
  };
  write("allocate", allocate);
  write("preferred", preferred);
  write("allocate_via_standin", viaStandin);

  auto a = distribution(allocate), p = distribution(preferred), s = distribution(viaStandin);
  std::printf("    Allocate                    %s\n", describe(a, "us", 1).c_str());
  std::printf("    GetPreferredAllocation      %s\n", describe(p, "us", 1).c_str());
  std::printf("    Allocate via stand-in stub  %s\n", describe(s, "us", 1).c_str());
  std::printf("    samples: %s\n", csv.path().c_str());

  r.info("Allocate round trip p50", fixed(a.p50, 1), "us");
  r.target("Allocate round trip p99", fixed(a.p99, 1), "us", "< 1000", a.n > 0 && a.p99 < 1000);
  r.info("Allocate round trip max", fixed(a.max, 1), "us");
  r.info("GetPreferredAllocation p50", fixed(p.p50, 1), "us");
  r.info("GetPreferredAllocation p99", fixed(p.p99, 1), "us");
  r.info("Allocate via stand-in (new stub) p50", fixed(s.p50, 1), "us");
}

}  // namespace kubeaccel::bench
