#include "preferred_allocation.hpp"

#include <algorithm>
#include <limits>
#include <map>
#include <optional>
#include <set>

namespace kubeaccel {
namespace {

using Candidates = std::vector<const AllocationCandidate*>;

// Slots this request already holds, per physical device (from must_include,
// and from earlier NUMA nodes when a request spans nodes).
using Held = std::map<std::string, size_t>;

// One physical device as the kubelet offers it now: its free slots are
// exactly its IDs in `available_deviceids`, so no other state is needed.
struct DeviceSlots {
  std::string physicalId;
  Candidates free;  // not yet picked, in the kubelet's order
  size_t freeBefore = 0;
  size_t heldBefore = 0;
  size_t held = 0;
};

// The pool's devices, ordered by physical ID: every tie below goes to the
// lowest ID, so the answer does not depend on the order of `available`.
std::vector<DeviceSlots> devicesOf(const Candidates& pool, const Held& held) {
  std::map<std::string, DeviceSlots> byPhysical;
  for (const auto* c : pool) byPhysical[c->physicalId].free.push_back(c);
  std::vector<DeviceSlots> out;
  for (auto& [id, d] : byPhysical) {
    d.physicalId = id;
    d.freeBefore = d.free.size();
    auto it = held.find(id);
    d.heldBefore = d.held = it == held.end() ? 0 : it->second;
    out.push_back(std::move(d));
  }
  return out;
}

void take(DeviceSlots& d, size_t n, Candidates& out) {
  out.insert(out.end(), d.free.begin(), d.free.begin() + n);
  d.free.erase(d.free.begin(), d.free.begin() + n);
  d.held += n;
}

// Pack is best fit: keep free slots together on as few devices as possible,
// so that a later multi-slot pod still finds a device that holds it whole.
void pickPack(std::vector<DeviceSlots>& devices, size_t k, Candidates& out) {
  // Devices the request already holds come first: it touches them anyway.
  for (auto& d : devices)
    if (d.held > 0 && out.size() < k) take(d, std::min(k - out.size(), d.free.size()), out);
  while (out.size() < k) {
    size_t rest = k - out.size();
    // The device with the fewest free slots (the most in use) that holds the rest whole.
    DeviceSlots* fit = nullptr;
    for (auto& d : devices)
      if (d.free.size() >= rest && (!fit || d.free.size() < fit->free.size())) fit = &d;
    if (fit) {
      take(*fit, rest, out);
      return;
    }
    // None does: empty the device with the most free slots, which keeps the
    // number of devices touched to the minimum, and look again.
    DeviceSlots* most = &devices.front();
    for (auto& d : devices)
      if (d.free.size() > most->free.size()) most = &d;
    take(*most, most->free.size(), out);
  }
}

// Spread levels the load: each slot goes to the device with the most free
// slots left, among equals the one holding fewer of this request's slots.
void pickSpread(std::vector<DeviceSlots>& devices, size_t k, Candidates& out) {
  while (out.size() < k) {
    DeviceSlots* best = nullptr;
    for (auto& d : devices) {
      if (d.free.empty()) continue;
      if (!best || d.free.size() > best->free.size() ||
          (d.free.size() == best->free.size() && d.held < best->held))
        best = &d;
    }
    take(*best, 1, out);
  }
}

// A pick of slots within one pool, with what the NUMA choice compares.
struct Pick {
  Candidates slots;
  size_t newDevices = 0;  // devices the request did not hold before
  size_t freeBefore = 0;  // their free slots before: fewer is fuller (pack)
  size_t leastFreeAfter = std::numeric_limits<size_t>::max();  // over the devices it uses (spread)
};

// Picks k slots of `pool` (k <= pool.size()) and adds them to `held`.
Pick pickSlots(const Candidates& pool, size_t k, Held& held, SlotPolicy policy) {
  auto devices = devicesOf(pool, held);
  Pick pick;
  if (policy == SlotPolicy::Pack)
    pickPack(devices, k, pick.slots);
  else
    pickSpread(devices, k, pick.slots);
  for (const auto& d : devices) {
    if (d.held == d.heldBefore) continue;
    held[d.physicalId] = d.held;
    pick.leastFreeAfter = std::min(pick.leastFreeAfter, d.free.size());
    if (d.heldBefore > 0) continue;
    ++pick.newDevices;
    pick.freeBefore += d.freeBefore;
  }
  return pick;
}

// Whether `a` serves the policy strictly better than `b`. Pack: fewer new
// devices, then fuller ones. Spread: more free slots left on the busiest
// device used, then more devices.
bool betterPick(const Pick& a, const Pick& b, SlotPolicy policy) {
  if (policy == SlotPolicy::Pack) {
    if (a.newDevices != b.newDevices) return a.newDevices < b.newDevices;
    return a.freeBefore < b.freeBefore;
  }
  if (a.leastFreeAfter != b.leastFreeAfter) return a.leastFreeAfter > b.leastFreeAfter;
  return a.newDevices > b.newDevices;
}

// The rest of the request from one NUMA node, if any node has enough.
// Prefers the must_include node, then the policy's better pick, then a node
// with affinity over -1, then the lowest node.
std::optional<Pick> pickOneNode(const std::map<int, Candidates>& byNuma, size_t need, const Held& held,
                                const std::set<int>& mustNuma, SlotPolicy policy) {
  auto onMustNode = [&](int numa) { return mustNuma.empty() || mustNuma == std::set<int>{numa}; };
  auto better = [&](int numa, const Pick& pick, int bestNuma, const Pick& bestPick) {
    if (onMustNode(numa) != onMustNode(bestNuma)) return onMustNode(numa);
    if (betterPick(pick, bestPick, policy)) return true;
    if (betterPick(bestPick, pick, policy)) return false;
    if ((numa < 0) != (bestNuma < 0)) return numa >= 0;
    return false;  // the lower node, which came first
  };
  std::optional<std::pair<int, Pick>> best;
  for (const auto& [numa, pool] : byNuma) {
    if (pool.size() < need) continue;
    Held scratch = held;
    Pick pick = pickSlots(pool, need, scratch, policy);
    if (!best || better(numa, pick, best->first, best->second)) best.emplace(numa, std::move(pick));
  }
  if (!best) return std::nullopt;
  return std::move(best->second);
}

// No single node has enough: span as few nodes as possible, the must_include
// nodes first, then the largest.
Candidates pickAcrossNodes(const std::map<int, Candidates>& byNuma, size_t need, Held& held,
                           const std::set<int>& mustNuma, SlotPolicy policy) {
  std::vector<std::pair<int, Candidates>> nodes(byNuma.begin(), byNuma.end());
  std::stable_sort(nodes.begin(), nodes.end(), [&](const auto& a, const auto& b) {
    bool ma = mustNuma.count(a.first), mb = mustNuma.count(b.first);
    if (ma != mb) return ma;
    return a.second.size() > b.second.size();
  });
  Candidates picked;
  for (const auto& [numa, pool] : nodes) {
    if (picked.size() == need) break;
    Pick more = pickSlots(pool, std::min(need - picked.size(), pool.size()), held, policy);
    picked.insert(picked.end(), more.slots.begin(), more.slots.end());
  }
  return picked;
}

}  // namespace

std::vector<std::string> preferredAllocation(const std::vector<AllocationCandidate>& available,
                                             const std::vector<std::string>& mustInclude, int size,
                                             SlotPolicy policy) {
  if (size < 0) throw std::invalid_argument("allocation_size is negative");
  std::map<std::string, const AllocationCandidate*> byId;
  for (const auto& c : available) byId.emplace(c.id, &c);
  if (static_cast<size_t>(size) > byId.size())
    throw std::invalid_argument("allocation_size " + std::to_string(size) + " exceeds the " +
                                std::to_string(byId.size()) + " available devices");

  std::vector<std::string> result;
  std::set<std::string> taken;
  Held held;
  std::set<int> mustNuma;
  for (const auto& id : mustInclude) {
    auto it = byId.find(id);
    if (it == byId.end()) throw std::invalid_argument("must_include device '" + id + "' is not available");
    if (!taken.insert(id).second) continue;
    result.push_back(id);
    ++held[it->second->physicalId];
    mustNuma.insert(it->second->numaNode);
  }
  if (result.size() > static_cast<size_t>(size))
    throw std::invalid_argument("must_include lists " + std::to_string(result.size()) +
                                " devices, more than allocation_size " + std::to_string(size));
  size_t need = size - result.size();
  if (need == 0) return result;

  // Each ID once (the first of duplicates), less the must_include ones. IDs
  // the plugin no longer advertises are taken last: Allocate would refuse them.
  std::map<int, Candidates> byNuma;
  Candidates unknown;
  size_t known = 0;
  for (const auto& c : available) {
    if (taken.count(c.id) || byId[c.id] != &c) continue;
    if (!c.known) {
      unknown.push_back(&c);
      continue;
    }
    byNuma[c.numaNode].push_back(&c);
    ++known;
  }
  size_t fromKnown = std::min(need, known);
  Candidates picked;
  if (fromKnown > 0) {
    auto one = pickOneNode(byNuma, fromKnown, held, mustNuma, policy);
    picked = one ? std::move(one->slots) : pickAcrossNodes(byNuma, fromKnown, held, mustNuma, policy);
  }
  for (size_t i = 0; picked.size() < need; ++i) picked.push_back(unknown[i]);
  for (const auto* c : picked) result.push_back(c->id);
  return result;
}

}  // namespace kubeaccel
