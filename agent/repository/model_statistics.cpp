#include "repository/model_statistics.hpp"

namespace kubeaccel::agent {
namespace {
uint64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}
}  // namespace

void ModelStatistics::recordSuccess(std::chrono::nanoseconds total, std::chrono::nanoseconds queue, uint64_t rows) {
  std::lock_guard lock(mu_);
  s_.success.add(total);
  s_.queue.add(queue);
  s_.inferenceCount += rows;
  s_.lastInferenceMs = nowMs();
}

void ModelStatistics::recordFailure(std::chrono::nanoseconds total) {
  std::lock_guard lock(mu_);
  s_.fail.add(total);
}

void ModelStatistics::recordCancelled(std::chrono::nanoseconds total) {
  std::lock_guard lock(mu_);
  s_.cancelled.add(total);
}

void ModelStatistics::recordExecution(uint64_t batchSize, std::chrono::nanoseconds compute) {
  std::lock_guard lock(mu_);
  ++s_.executionCount;
  s_.computeInfer.add(compute);
  s_.batches[batchSize].add(compute);
}

ModelStatisticsSnapshot ModelStatistics::snapshot() const {
  std::lock_guard lock(mu_);
  return s_;
}

}  // namespace kubeaccel::agent
