#include "agent_metrics.hpp"

namespace kubeaccel::agent {

InferObserver AgentMetrics::observerFor(const std::string& resource, const std::string& slotId) {
  return [this, resource, slotId](const std::string& model, grpc::StatusCode code, std::chrono::nanoseconds total,
                                  const JobTiming& timing) {
    metrics::Labels labels = {{"resource", resource}, {"slot", slotId}, {"model", model}};
    auto seconds = [](std::chrono::nanoseconds d) { return std::chrono::duration<double>(d).count(); };
    registry_.counter("kubeaccel_agent_requests_total", "Inference requests answered, by model and slot.", labels)
        .inc();
    // Charged whatever became of the answer: the run used the device.
    if (timing.charged.count() > 0)
      registry_
          .counter("kubeaccel_agent_compute_seconds_total",
                   "Device compute time charged to the slot: each run's compute time split across the requests in "
                   "it in proportion to their rows. The scheduler gives slots with waiting work equal shares of it.",
                   labels)
          .inc(seconds(timing.charged));
    if (code == grpc::StatusCode::CANCELLED) {
      registry_
          .counter("kubeaccel_agent_requests_cancelled_total",
                   "Inference requests their client cancelled before the answer, by model and slot; not run "
                   "when cancelled while queued.",
                   labels)
          .inc();
      return;
    }
    if (code != grpc::StatusCode::OK) {
      registry_
          .counter("kubeaccel_agent_request_failures_total", "Inference requests that failed, by model and slot.",
                   labels)
          .inc();
      return;
    }
    registry_
        .histogram("kubeaccel_agent_request_duration_seconds", "Time from request to answer in the agent.",
                   metrics::latencyBuckets(), labels)
        .observe(seconds(total));
    registry_
        .histogram("kubeaccel_agent_queue_duration_seconds", "Time a request waited in its device's queue.",
                   metrics::latencyBuckets(), labels)
        .observe(seconds(timing.queue));
    registry_
        .histogram("kubeaccel_agent_compute_duration_seconds", "Backend time of the run the request was part of.",
                   metrics::latencyBuckets(), labels)
        .observe(seconds(timing.compute));
    registry_
        .histogram("kubeaccel_agent_batch_size", "Rows in the backend run the request was part of.",
                   metrics::batchSizeBuckets(), labels)
        .observe(timing.batchSize);
  };
}

}  // namespace kubeaccel::agent
