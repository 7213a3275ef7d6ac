#pragma once
// Counters behind ModelStatistics, kept per model on a device. Thread-safe.

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>

namespace kubeaccel::agent {

struct Duration {
  uint64_t count = 0;
  uint64_t ns = 0;
  void add(std::chrono::nanoseconds d) {
    ++count;
    ns += static_cast<uint64_t>(d.count());
  }
};

struct ModelStatisticsSnapshot {
  uint64_t lastInferenceMs = 0;  // since the epoch
  uint64_t inferenceCount = 0;   // samples (batch rows) inferred
  uint64_t executionCount = 0;   // backend runs
  Duration success, fail, queue, computeInfer;
  Duration cancelled;  // requests the client cancelled (queued ones were not run)
  std::map<uint64_t, Duration> batches;  // batch size -> compute time
};

class ModelStatistics {
 public:
  void recordSuccess(std::chrono::nanoseconds total, std::chrono::nanoseconds queue, uint64_t rows);
  void recordFailure(std::chrono::nanoseconds total);
  void recordCancelled(std::chrono::nanoseconds total);
  void recordExecution(uint64_t batchSize, std::chrono::nanoseconds compute);
  ModelStatisticsSnapshot snapshot() const;

 private:
  mutable std::mutex mu_;
  ModelStatisticsSnapshot s_;
};

}  // namespace kubeaccel::agent
