#include "discovery/inventory.hpp"

#include <algorithm>

namespace kubeaccel {

namespace {

bool hasMember(const Device& d, const std::string& syspath) {
  return std::find(d.members.begin(), d.members.end(), syspath) != d.members.end();
}

bool sharesMember(const Device& a, const Device& b) {
  return std::any_of(a.members.begin(), a.members.end(), [&](const std::string& m) { return hasMember(b, m); });
}

}  // namespace

bool Inventory::upsert(Device d, Clock::time_point now) {
  (void)now;
  bool changed = false;
  // A device of another class at this syspath is gone (it changed identity).
  std::erase_if(byId_, [&](const auto& kv) {
    const Device& old = kv.second.tracked.device;
    bool stale = kv.second.present && old.className != d.className && sharesMember(old, d);
    changed |= stale;
    return stale;
  });
  bool healthy = d.problem.empty();
  Key key{d.className, d.id};
  auto it = byId_.find(key);
  if (it == byId_.end()) {
    byId_.emplace(std::move(key), Entry{TrackedDevice{std::move(d), healthy}, true, {}});
    return true;
  }
  Entry& e = it->second;
  TrackedDevice updated{std::move(d), healthy};
  changed |= !(e.tracked == updated) || !e.present;
  e.tracked = std::move(updated);
  e.present = true;
  return changed;
}

bool Inventory::remove(const std::string& syspath, bool reenumerates, Clock::time_point now) {
  for (auto& [id, e] : byId_) {
    if (!e.present || !hasMember(e.tracked.device, syspath)) continue;
    e.present = false;
    e.goneAt = now;
    bool wasHealthy = e.tracked.healthy;
    if (!reenumerates) e.tracked.healthy = false;
    return wasHealthy != e.tracked.healthy;
  }
  return false;
}

bool Inventory::expire(Clock::time_point now) {
  return std::erase_if(byId_, [&](const auto& kv) {
           return !kv.second.present && now >= kv.second.goneAt + grace_;
         }) > 0;
}

std::optional<Inventory::Clock::time_point> Inventory::nextExpiry() const {
  std::optional<Clock::time_point> next;
  for (const auto& [id, e] : byId_)
    if (!e.present && (!next || e.goneAt + grace_ < *next)) next = e.goneAt + grace_;
  return next;
}

std::vector<std::string> Inventory::overlapping(const Device& d) const {
  std::vector<std::string> out;
  for (const auto& [key, e] : byId_) {
    const Device& other = e.tracked.device;
    if (e.present && key != Key{d.className, d.id} && other.className == d.className && sharesMember(other, d))
      out.push_back(other.syspath);
  }
  return out;
}

const Device* Inventory::presentAt(const std::string& syspath) const {
  for (const auto& [id, e] : byId_)
    if (e.present && hasMember(e.tracked.device, syspath)) return &e.tracked.device;
  return nullptr;
}

std::optional<std::string> Inventory::ownerOf(const std::string& syspath) const {
  for (const auto& [id, e] : byId_) {
    if (!e.present) continue;
    for (const std::string& owner : e.tracked.device.members)
      if (syspath.size() > owner.size() && syspath.compare(0, owner.size(), owner) == 0 &&
          syspath[owner.size()] == '/')
        return owner;
  }
  return std::nullopt;
}

std::vector<TrackedDevice> Inventory::snapshot() const {
  std::vector<TrackedDevice> out;
  out.reserve(byId_.size());
  for (const auto& [key, e] : byId_) out.push_back(e.tracked);  // sorted by class, then ID
  return out;
}

}  // namespace kubeaccel
