#pragma once
// The agent's Prometheus metrics: requests, failures, request/queue/compute
// time and batch size, per model and per slot, and the compute time charged
// to each slot (what fair sharing of the device divides); per device, the
// models it serves and, for an NVIDIA GPU, its memory and utilization.

#include <map>
#include <mutex>
#include <set>
#include <string>

#include "metrics/metrics_registry.hpp"
#include "served_device.hpp"
#include "server/slot_context.hpp"

namespace kubeaccel::agent {

class AgentMetrics {
 public:
  // What a slot's service reports every finished ModelInfer to.
  InferObserver observerFor(const std::string& resource, const std::string& slotId);
  // What each served device's reports set (AgentOptions::reportDevice): the
  // models it serves, and for a GPU, NVML's memory and utilization figures
  // (absent, not zero, where NVML is not available).
  void deviceReport(const DeviceReport& report, bool gone);
  const metrics::Registry& registry() const { return registry_; }

 private:
  metrics::Registry registry_;
  std::mutex mu_;
  std::map<std::string, std::set<std::string>> models_;  // by device: models reported ready
  std::set<std::string> noGpuFigures_;                   // devices whose lack of NVML was logged
};

}  // namespace kubeaccel::agent
