#include "discovery/device_watcher.hpp"

#include <spdlog/spdlog.h>


namespace kubeaccel {

DeviceWatcher::DeviceWatcher(const Config& config, EventLoop& loop, Listener listener)
    : config_(config), loop_(loop), listener_(std::move(listener)), scanner_(config), inventory_(config.graceWindow) {}

void DeviceWatcher::start() {
  // Monitor first, so nothing that happens during enumeration is missed.
  monitor_ = std::make_unique<UdevMonitor>(scanner_.handle());
  coalesce_ = loop_.makeTimer([this] { flush(); });
  expiry_ = loop_.makeTimer([this] { flush(); });

  auto t0 = std::chrono::steady_clock::now();
  std::vector<Device> found = scanner_.scanAll();
  spdlog::info("discovered {} device(s) in {} ms", found.size(),
               std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count());
  auto now = Inventory::Clock::now();
  for (auto& d : found) {
    if (!d.problem.empty()) spdlog::warn("{} device {} at {}: {}", d.className, d.id, d.busLocation, d.problem);
    inventory_.upsert(std::move(d), now);
  }
  loop_.watchFd(monitor_->fd(), [this] { onUevents(); });
  flush();
}

void DeviceWatcher::onUevents() {
  for (const auto& ev : monitor_->drain()) apply(ev);
  if (!coalesce_->armed()) coalesce_->armIn(kCoalesce);
}

void DeviceWatcher::apply(const Uevent& ev) {
  auto now = Inventory::Clock::now();
  if (ev.action == "remove") {
    if (const Device* gone = inventory_.presentAt(ev.syspath)) {
      // One function of a card went: the card is what its other functions make.
      for (const auto& member : gone->members)
        if (member != ev.syspath)
          if (auto d = scanner_.resolve(member, ev.syspath)) return upsert(std::move(*d));
      const DeviceClass* c = config_.findClass(gone->className);
      spdlog::info("device removed: {} {} from {}", gone->className, gone->id, gone->busLocation);
      inventory_.remove(ev.syspath, c && c->reenumerates, now);
    } else if (auto owner = inventory_.ownerOf(ev.syspath)) {
      // One of a device's node-carrying children went: re-read the device
      // without it (sysfs may still show it).
      if (auto d = scanner_.resolve(*owner, ev.syspath)) upsert(std::move(*d));
    }
    return;
  }
  if (auto d = scanner_.resolve(ev.syspath)) {
    upsert(std::move(*d));
  } else if (inventory_.presentAt(ev.syspath)) {
    // It changed into something the catalog no longer claims.
    inventory_.remove(ev.syspath, false, now);
  }
}

void DeviceWatcher::upsert(Device d, bool recheckOthers) {
  std::vector<std::string> others = recheckOthers ? inventory_.overlapping(d) : std::vector<std::string>{};
  const Device* before = inventory_.presentAt(d.syspath);
  std::string problemBefore = before ? before->problem : "";
  bool known = before != nullptr;
  std::string cls = d.className, id = d.id, where = d.busLocation, problem = d.problem;
  if (inventory_.upsert(std::move(d), Inventory::Clock::now()) && !known)
    spdlog::info("device added: {} {} at {}", cls, id, where);
  if (problem != problemBefore) {
    if (!problem.empty())
      spdlog::warn("{} device {} at {}: {}", cls, id, where, problem);
    else if (known)
      spdlog::info("{} device {} at {}: usable again", cls, id, where);
  }
  // A sysfs device belongs to one device only.
  for (const auto& other : others) {
    if (auto again = scanner_.resolve(other))
      upsert(std::move(*again), false);
    else
      inventory_.remove(other, false, Inventory::Clock::now());
  }
}

void DeviceWatcher::flush() {
  auto now = Inventory::Clock::now();
  inventory_.expire(now);
  if (auto next = inventory_.nextExpiry())
    expiry_->armAt(*next);
  else
    expiry_->disarm();
  auto snap = inventory_.snapshot();
  if (snap == reported_) return;
  reported_ = std::move(snap);
  listener_(reported_);
}

}  // namespace kubeaccel
