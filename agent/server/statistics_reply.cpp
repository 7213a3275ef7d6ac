#include "server/statistics_reply.hpp"

#include <algorithm>

namespace kubeaccel::agent {
namespace {

void add(Duration& a, const Duration& b) {
  a.count += b.count;
  a.ns += b.ns;
}

void fill(inference::StatisticDuration* d, const Duration& s) {
  d->set_count(s.count);
  d->set_ns(s.ns);
}

}  // namespace

void mergeInto(ModelStatisticsSnapshot& a, const ModelStatisticsSnapshot& b) {
  a.lastInferenceMs = std::max(a.lastInferenceMs, b.lastInferenceMs);
  a.inferenceCount += b.inferenceCount;
  a.executionCount += b.executionCount;
  add(a.success, b.success);
  add(a.fail, b.fail);
  add(a.queue, b.queue);
  add(a.computeInfer, b.computeInfer);
  add(a.cancelled, b.cancelled);
  for (const auto& [size, d] : b.batches) add(a.batches[size], d);
}

grpc::Status statisticsReply(const inference::ModelStatisticsRequest& req, const std::vector<ModelIndexEntry>& index,
                             const std::function<std::optional<ModelStatisticsSnapshot>(const std::string&)>& figuresOf,
                             inference::ModelStatisticsResponse* resp) {
  using grpc::Status;
  using grpc::StatusCode;
  for (const auto& e : index) {
    if (!req.name().empty() && e.name != req.name()) continue;
    // Figures are kept per model; they belong to the version served (or last served).
    if (!req.version().empty() && req.version() != std::to_string(e.version)) {
      if (req.name().empty()) continue;
      return Status(StatusCode::NOT_FOUND,
                    "model '" + e.name + "' version " + req.version() + " does not exist" +
                        (e.version > 0 ? " (version " + std::to_string(e.version) + " is)" : ""));
    }
    auto snap = figuresOf(e.name);
    if (!snap) continue;
    auto* m = resp->add_model_stats();
    m->set_name(e.name);
    m->set_version(std::to_string(e.version));
    m->set_last_inference(snap->lastInferenceMs);
    m->set_inference_count(snap->inferenceCount);
    m->set_execution_count(snap->executionCount);
    auto* is = m->mutable_inference_stats();
    fill(is->mutable_success(), snap->success);
    // The protocol has no field for cancelled requests; they are failures
    // (never successes) there, and apart in the agent's metrics.
    Duration failed = snap->fail;
    add(failed, snap->cancelled);
    fill(is->mutable_fail(), failed);
    fill(is->mutable_queue(), snap->queue);
    fill(is->mutable_compute_infer(), snap->computeInfer);
    for (const auto& [size, d] : snap->batches) {
      auto* b = m->add_batch_stats();
      b->set_batch_size(size);
      fill(b->mutable_compute_infer(), d);
    }
  }
  if (!req.name().empty() && resp->model_stats_size() == 0)
    return Status(StatusCode::NOT_FOUND, "model '" + req.name() + "' is not in the repository");
  return Status::OK;
}

}  // namespace kubeaccel::agent
