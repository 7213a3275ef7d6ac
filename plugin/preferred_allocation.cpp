#include "preferred_allocation.hpp"

#include <algorithm>
#include <map>
#include <optional>
#include <set>

namespace kubeaccel {
namespace {

using Candidates = std::vector<const AllocationCandidate*>;

// Picks k of `pool`, given the physical devices `chosen` already uses.
Candidates pickSlots(Candidates pool, size_t k, const std::map<std::string, int>& used, SlotPolicy policy) {
  std::map<std::string, Candidates> byPhysical;
  for (const auto* c : pool) byPhysical[c->physicalId].push_back(c);
  std::vector<std::pair<std::string, Candidates>> groups(byPhysical.begin(), byPhysical.end());
  auto usedBy = [&](const std::string& p) {
    auto it = used.find(p);
    return it == used.end() ? 0 : it->second;
  };
  if (policy == SlotPolicy::Pack) {
    // Devices already in use first, then the fullest: fewest devices touched.
    std::stable_sort(groups.begin(), groups.end(), [&](const auto& a, const auto& b) {
      bool ua = usedBy(a.first) > 0, ub = usedBy(b.first) > 0;
      if (ua != ub) return ua;
      return a.second.size() > b.second.size();
    });
    Candidates out;
    for (const auto& [_, g] : groups)
      for (const auto* c : g)
        if (out.size() < k) out.push_back(c);
    return out;
  }
  // Spread: least-used devices first, one slot from each in turn.
  std::stable_sort(groups.begin(), groups.end(),
                   [&](const auto& a, const auto& b) { return usedBy(a.first) < usedBy(b.first); });
  Candidates out;
  for (size_t round = 0; out.size() < k; ++round) {
    bool any = false;
    for (const auto& [_, g] : groups)
      if (round < g.size() && out.size() < k) {
        out.push_back(g[round]);
        any = true;
      }
    if (!any) break;
  }
  return out;
}

size_t physicalCount(const Candidates& cs, const std::map<std::string, int>& used) {
  std::set<std::string> fresh;
  for (const auto* c : cs)
    if (!used.count(c->physicalId)) fresh.insert(c->physicalId);
  return fresh.size();
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
  std::map<std::string, int> usedPhysical;
  std::set<int> mustNuma;
  for (const auto& id : mustInclude) {
    auto it = byId.find(id);
    if (it == byId.end()) throw std::invalid_argument("must_include device '" + id + "' is not available");
    if (!taken.insert(id).second) continue;
    result.push_back(id);
    ++usedPhysical[it->second->physicalId];
    mustNuma.insert(it->second->numaNode);
  }
  if (result.size() > static_cast<size_t>(size))
    throw std::invalid_argument("must_include lists " + std::to_string(result.size()) +
                                " devices, more than allocation_size " + std::to_string(size));
  size_t need = size - result.size();
  if (need == 0) return result;

  std::map<int, Candidates> byNuma;
  for (const auto& c : available)
    if (!taken.count(c.id) && byId[c.id] == &c) byNuma[c.numaNode].push_back(&c);

  // Best single NUMA node that can take the rest: the must_include node(s)
  // first, then the pick touching the fewest new physical devices (pack) or
  // the most (spread), then nodes with affinity before -1, then the lowest.
  std::optional<std::pair<int, Candidates>> best;
  auto better = [&](int numa, const Candidates& pick, int bestNuma, const Candidates& bestPick) {
    bool m = mustNuma.empty() || mustNuma == std::set<int>{numa};
    bool bm = mustNuma.empty() || mustNuma == std::set<int>{bestNuma};
    if (m != bm) return m;
    size_t p = physicalCount(pick, usedPhysical), bp = physicalCount(bestPick, usedPhysical);
    if (p != bp) return policy == SlotPolicy::Pack ? p < bp : p > bp;
    if ((numa < 0) != (bestNuma < 0)) return numa >= 0;
    return numa < bestNuma;
  };
  for (const auto& [numa, pool] : byNuma) {
    if (pool.size() < need) continue;
    Candidates pick = pickSlots(pool, need, usedPhysical, policy);
    if (!best || better(numa, pick, best->first, best->second)) best.emplace(numa, std::move(pick));
  }

  Candidates picked;
  if (best) {
    picked = std::move(best->second);
  } else {
    // No single node suffices: span as few nodes as possible, largest first.
    std::vector<std::pair<int, Candidates>> nodes(byNuma.begin(), byNuma.end());
    std::stable_sort(nodes.begin(), nodes.end(), [&](const auto& a, const auto& b) {
      bool ma = mustNuma.count(a.first), mb = mustNuma.count(b.first);
      if (ma != mb) return ma;
      return a.second.size() > b.second.size();
    });
    for (const auto& [numa, pool] : nodes) {
      if (picked.size() == need) break;
      Candidates more = pickSlots(pool, std::min(need - picked.size(), pool.size()), usedPhysical, policy);
      for (const auto* c : more) ++usedPhysical[c->physicalId];
      picked.insert(picked.end(), more.begin(), more.end());
    }
  }
  for (const auto* c : picked) result.push_back(c->id);
  return result;
}

}  // namespace kubeaccel
