#pragma once
// Discovery, event driven: enumerates once, then follows udev's netlink monitor
// and the grace-window timers, and reports the node's devices whenever what a
// consumer sees changes. Runs on an EventLoop; never polls.

#include <chrono>
#include <functional>
#include <memory>
#include <vector>

#include "config/config.hpp"
#include "discovery/inventory.hpp"
#include "discovery/udev_monitor.hpp"
#include "discovery/udev_scanner.hpp"
#include "util/event_loop.hpp"

namespace kubeaccel {

class DeviceWatcher {
 public:
  using Listener = std::function<void(const std::vector<TrackedDevice>&)>;

  // Events arriving within this window after the first are reported together.
  static constexpr std::chrono::milliseconds kCoalesce{2};

  DeviceWatcher(const Config& config, EventLoop& loop, Listener listener);

  // Opens the monitor, enumerates, and reports the first set before returning.
  void start();

 private:
  void onUevents();
  void apply(const Uevent& ev);
  // `recheckOthers`: read again the devices that claimed one of d's members.
  void upsert(Device d, bool recheckOthers = true);
  void flush();

  const Config& config_;
  EventLoop& loop_;
  Listener listener_;
  UdevScanner scanner_;
  std::unique_ptr<UdevMonitor> monitor_;
  Inventory inventory_;
  std::unique_ptr<EventLoop::Timer> coalesce_;
  std::unique_ptr<EventLoop::Timer> expiry_;
  std::vector<TrackedDevice> reported_;
};

}  // namespace kubeaccel
