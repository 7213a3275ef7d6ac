#pragma once
// The current device set of one resource, shared between the discovery thread
// (writer) and gRPC threads (readers and ListAndWatch streams).

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "discovery/advertisement.hpp"

namespace kubeaccel {

class ResourceState {
 public:
  using Devices = std::vector<AdvertisedDevice>;
  using Snapshot = std::shared_ptr<const Devices>;
  using Listener = std::function<void(const Snapshot&)>;

  ResourceState() : current_(std::make_shared<Devices>()) {}

  // Replaces the set; listeners hear of it only when it differs.
  void set(Devices devices);
  Snapshot get() const;

  // The listener runs with the state's lock held: it must not call back in.
  int subscribe(Listener l);
  void unsubscribe(int token);

 private:
  mutable std::mutex mu_;
  Snapshot current_;
  std::map<int, Listener> listeners_;
  int nextToken_ = 0;
};

}  // namespace kubeaccel
