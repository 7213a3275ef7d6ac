#include "discovery/inventory.hpp"

#include <algorithm>

namespace kubeaccel {

bool Inventory::upsert(Device d, Clock::time_point now) {
  (void)now;
  bool changed = false;
  // A device of another class at this syspath is gone (it changed identity).
  std::erase_if(byId_, [&](const auto& kv) {
    const Device& old = kv.second.tracked.device;
    bool stale = kv.second.present && old.syspath == d.syspath && old.className != d.className;
    changed |= stale;
    return stale;
  });
  if (!byId_.count(d.id)) {
    // The same class in the same port is the same device: a stick whose
    // firmware booted, or whose serial became readable. sysfs may already show
    // the new device while the old one's removal is still being processed, so
    // this holds whether or not the old entry is marked gone yet.
    for (const auto& [id, e] : byId_) {
      const Device& old = e.tracked.device;
      if (old.className == d.className && old.portKey == d.portKey) {
        d.id = id;
        break;
      }
    }
  }
  auto it = byId_.find(d.id);
  if (it == byId_.end()) {
    std::string id = d.id;
    byId_.emplace(std::move(id), Entry{TrackedDevice{std::move(d), true}, true, {}});
    return true;
  }
  Entry& e = it->second;
  TrackedDevice updated{std::move(d), true};
  changed |= !(e.tracked == updated) || !e.present;
  e.tracked = std::move(updated);
  e.present = true;
  return changed;
}

bool Inventory::remove(const std::string& syspath, bool reenumerates, Clock::time_point now) {
  for (auto& [id, e] : byId_) {
    if (!e.present || e.tracked.device.syspath != syspath) continue;
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

bool Inventory::serialTaken(const std::string& serial, const std::string& syspath) const {
  return std::any_of(byId_.begin(), byId_.end(), [&](const auto& kv) {
    const Device& d = kv.second.tracked.device;
    return kv.second.present && d.serial == serial && d.syspath != syspath;
  });
}

const Device* Inventory::presentAt(const std::string& syspath) const {
  for (const auto& [id, e] : byId_)
    if (e.present && e.tracked.device.syspath == syspath) return &e.tracked.device;
  return nullptr;
}

std::optional<std::string> Inventory::ownerOf(const std::string& syspath) const {
  for (const auto& [id, e] : byId_) {
    const std::string& owner = e.tracked.device.syspath;
    if (e.present && syspath.size() > owner.size() && syspath.compare(0, owner.size(), owner) == 0 &&
        syspath[owner.size()] == '/')
      return owner;
  }
  return std::nullopt;
}

std::vector<TrackedDevice> Inventory::snapshot() const {
  std::vector<TrackedDevice> out;
  out.reserve(byId_.size());
  for (const auto& [id, e] : byId_) out.push_back(e.tracked);
  std::sort(out.begin(), out.end(), [](const TrackedDevice& a, const TrackedDevice& b) {
    return std::tie(a.device.className, a.device.id) < std::tie(b.device.className, b.device.id);
  });
  return out;
}

}  // namespace kubeaccel
