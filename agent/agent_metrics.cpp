#include "agent_metrics.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "gpu/nvml.hpp"

namespace kubeaccel::agent {

InferObserver AgentMetrics::observerFor(const std::string& resource, const std::string& slotId) {
  InferObserver o;
  // Received and not yet answered is what is queued or running: a client
  // (or a test) can tell that its requests are in the agent.
  o.received = [this, resource, slotId](const std::string& model) {
    registry_
        .counter("kubeaccel_agent_requests_received_total",
                 "Inference requests taken for a served model, by model and slot (each is answered once, "
                 "counted in kubeaccel_agent_requests_total then).",
                 {{"resource", resource}, {"slot", slotId}, {"model", model}})
        .inc();
  };
  o.answered = [this, resource, slotId](const std::string& model, grpc::StatusCode code,
                                        std::chrono::nanoseconds total, const JobTiming& timing) {
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
  return o;
}

void AgentMetrics::deviceReport(const DeviceReport& r, bool gone) {
  metrics::Labels device = {{"resource", r.resource}, {"device", r.deviceId}};
  std::lock_guard lock(mu_);
  auto& known = models_[r.deviceId];
  for (const auto& m : r.readyModels) known.insert(m);
  for (const auto& m : known) {
    metrics::Labels labels = device;
    labels.emplace_back("model", m);
    bool ready = std::find(r.readyModels.begin(), r.readyModels.end(), m) != r.readyModels.end();
    registry_.gauge("kubeaccel_agent_model_ready", "1 when the device serves the model (READY), else 0.", labels)
        .set(ready ? 1 : 0);
  }
  if (r.pciBusId.empty()) return;
  std::string why;
  auto usage = gone ? std::nullopt : gpu::usageOf(r.pciBusId, &why);
  if (!usage) {
    if (!gone && noGpuFigures_.insert(r.deviceId).second)
      spdlog::debug("{} {}: no GPU figures: {}", r.resource, r.deviceId, why);
    return;
  }
  registry_.gauge("kubeaccel_gpu_memory_used_bytes", "GPU memory in use (NVML), all processes.", device)
      .set(static_cast<double>(usage->memoryUsedBytes));
  registry_.gauge("kubeaccel_gpu_memory_total_bytes", "GPU memory in all (NVML).", device)
      .set(static_cast<double>(usage->memoryTotalBytes));
  registry_.gauge("kubeaccel_gpu_utilization_ratio",
                  "Fraction of NVML's last sample period in which a kernel ran on the GPU (0 to 1).", device)
      .set(usage->utilizationPercent / 100.0);
}

}  // namespace kubeaccel::agent
