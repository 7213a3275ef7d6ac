#pragma once
// The devices a node has, with the removal rules: a re-enumerating device keeps
// its identity and health for the grace window, any other removed device turns
// Unhealthy at once, and a device not back when the window ends is dropped.
// Pure state: time is passed in, so it is tested without clocks or udev.

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "discovery/device.hpp"

namespace kubeaccel {

struct TrackedDevice {
  Device device;
  bool healthy = true;
  bool operator==(const TrackedDevice&) const = default;
};

class Inventory {
 public:
  using Clock = std::chrono::steady_clock;

  explicit Inventory(std::chrono::milliseconds grace) : grace_(grace) {}

  // A device seen now (added or changed); Healthy unless it has a problem.
  // Returns whether anything a consumer sees changed.
  bool upsert(Device d, Clock::time_point now);

  // The device with member `syspath` left. `reenumerates`: keep it Healthy meanwhile.
  bool remove(const std::string& syspath, bool reenumerates, Clock::time_point now);

  // Drops devices whose window has ended.
  bool expire(Clock::time_point now);
  std::optional<Clock::time_point> nextExpiry() const;

  // Syspaths of the present devices of d's class, other than d, that have a
  // member of d's (read before a function turned out to be a VF, say): they
  // are to be read again.
  std::vector<std::string> overlapping(const Device& d) const;
  // The present device with a member at `syspath`, or null.
  const Device* presentAt(const std::string& syspath) const;
  // The member of a present device that `syspath` sits under (a child's owner).
  std::optional<std::string> ownerOf(const std::string& syspath) const;

  std::vector<TrackedDevice> snapshot() const;

 private:
  struct Entry {
    TrackedDevice tracked;
    bool present = true;
    Clock::time_point goneAt{};
  };
  std::chrono::milliseconds grace_;
  // By (class, ID): two classes' devices may have the same place, in turn.
  using Key = std::pair<std::string, std::string>;
  std::map<Key, Entry> byId_;
};

}  // namespace kubeaccel
