// Micro-benchmarks of the plugin's pure parts: the GetPreferredAllocation
// policy, building (and serializing) a ListAndWatch message, and building an
// Allocate response. Google Benchmark; scripts/run-benchmarks writes the CSV.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "container_allocation.hpp"
#include "device_plugin_service.hpp"
#include "preferred_allocation.hpp"

namespace kubeaccel {
namespace {

// `physical` devices of `slots` slots each, alternating between two NUMA nodes.
std::vector<AllocationCandidate> candidates(int physical, int slots) {
  std::vector<AllocationCandidate> out;
  for (int p = 0; p < physical; ++p) {
    std::string pid = "0000-" + std::to_string(10 + p) + "-00.0";
    for (int s = 0; s < slots; ++s) out.push_back({pid + "-s" + std::to_string(s), pid, p % 2});
  }
  return out;
}

// A node's advertised set: `n` agent-mode slots (4 per device) with NUMA affinity.
ResourceState::Devices advertised(int n) {
  ResourceState::Devices out;
  for (int i = 0; i < n; ++i) {
    AdvertisedDevice d;
    d.physicalId = "usb-1-" + std::to_string(i / 4 + 1);
    d.slot = i % 4;
    d.id = d.physicalId + "-s" + std::to_string(d.slot);
    d.healthy = i % 7 != 3;
    d.numaNode = (i / 4) % 2;
    d.device.className = "movidius-ncs2";
    d.device.id = d.physicalId;
    d.device.nodes = {"/dev/bus/usb/001/" + std::to_string(100 + i / 4)};
    out.push_back(std::move(d));
  }
  return out;
}

// Args: physical devices, slots per device, allocation size, policy (0 pack, 1 spread).
void BM_PreferredAllocation(benchmark::State& state) {
  auto available = candidates(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)));
  int size = static_cast<int>(state.range(2));
  SlotPolicy policy = state.range(3) == 0 ? SlotPolicy::Pack : SlotPolicy::Spread;
  for (auto _ : state) benchmark::DoNotOptimize(preferredAllocation(available, {}, size, policy));
  state.SetLabel(std::to_string(available.size()) + " available, " + (policy == SlotPolicy::Pack ? "pack" : "spread"));
}
BENCHMARK(BM_PreferredAllocation)
    ->ArgNames({"devices", "slots", "size", "spread"})
    ->Args({1, 4, 1, 0})      // one NCS2, one slot: the common case
    ->Args({2, 4, 2, 0})
    ->Args({8, 4, 4, 0})      // a well-stocked node
    ->Args({8, 4, 4, 1})
    ->Args({64, 4, 16, 0})    // far beyond a real node: how it scales
    ->Args({64, 4, 16, 1});

// With must_include: the kubelet passes devices a container already holds.
void BM_PreferredAllocationMustInclude(benchmark::State& state) {
  auto available = candidates(static_cast<int>(state.range(0)), 4);
  std::vector<std::string> must = {available[1].id};
  int size = static_cast<int>(state.range(1));
  for (auto _ : state) benchmark::DoNotOptimize(preferredAllocation(available, must, size, SlotPolicy::Pack));
}
BENCHMARK(BM_PreferredAllocationMustInclude)->ArgNames({"devices", "size"})->Args({8, 4})->Args({64, 16});

void BM_ListAndWatchMessage(benchmark::State& state) {
  auto devices = advertised(static_cast<int>(state.range(0)));
  for (auto _ : state) benchmark::DoNotOptimize(listAndWatchMessage(devices));
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_ListAndWatchMessage)->ArgName("devices")->Arg(1)->Arg(8)->Arg(32)->Arg(256);

// What a ListAndWatch stream does per change: build, then serialize to compare
// with the last message sent.
void BM_ListAndWatchMessageSerialized(benchmark::State& state) {
  auto devices = advertised(static_cast<int>(state.range(0)));
  for (auto _ : state) benchmark::DoNotOptimize(listAndWatchMessage(devices).SerializeAsString());
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_ListAndWatchMessageSerialized)->ArgName("devices")->Arg(1)->Arg(8)->Arg(32)->Arg(256);

// Allocate's response for one container: device mode (a PCI card with its
// nodes) and agent mode (one slot directory mount).
void BM_ContainerAllocation(benchmark::State& state) {
  bool agent = state.range(0) != 0;
  DeviceClass cls;
  cls.name = agent ? "movidius-ncs2" : "intel-fpga-pac";
  cls.mode = agent ? Mode::Agent : Mode::Device;
  cls.slots = agent ? 4 : 1;
  AdvertisedDevice d;
  d.id = agent ? "usb-1-3-s0" : "0000-5e-00.0";
  d.physicalId = agent ? "usb-1-3" : "0000-5e-00.0";
  d.slot = agent ? 0 : -1;
  d.numaNode = 1;
  d.device.className = cls.name;
  if (!agent) d.device.nodes = {"/dev/intel-fpga-fme.0", "/dev/intel-fpga-port.0"};
  std::vector<const AdvertisedDevice*> devices = {&d};
  AllocationPaths paths;
  paths.agentDir = "/var/lib/kubeaccel/agent";
  if (!agent) paths.cdiKind = "kubeaccel.io/" + cls.name;  // a CDI spec is in place: CDI names too
  for (auto _ : state) benchmark::DoNotOptimize(containerAllocation(cls, devices, paths));
  state.SetLabel(agent ? "agent mode, 1 slot" : "device mode, 2 nodes + CDI");
}
BENCHMARK(BM_ContainerAllocation)->ArgName("agent")->Arg(0)->Arg(1);

}  // namespace
}  // namespace kubeaccel

BENCHMARK_MAIN();
