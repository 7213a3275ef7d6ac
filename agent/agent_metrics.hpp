#pragma once
// The agent's Prometheus metrics: requests, failures, request/queue/compute
// time and batch size, per model and per slot, and the compute time charged
// to each slot (what fair sharing of the device divides).

#include <string>

#include "metrics/metrics_registry.hpp"
#include "server/slot_context.hpp"

namespace kubeaccel::agent {

class AgentMetrics {
 public:
  // What a slot's service reports every finished ModelInfer to.
  InferObserver observerFor(const std::string& resource, const std::string& slotId);
  const metrics::Registry& registry() const { return registry_; }

 private:
  metrics::Registry registry_;
};

}  // namespace kubeaccel::agent
