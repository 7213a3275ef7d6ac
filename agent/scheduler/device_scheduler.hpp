#pragma once
// One device's work queue. Each slot has its own FIFO; workers take the next
// job from the slots in turn, so one pod cannot starve another. Jobs of a
// batched model with dynamic batching are merged along dim 0 (up to
// max_batch_size, waiting at most max_queue_delay for a preferred size).
// Jobs past their deadline, and jobs their client cancelled, are answered
// without running. Each slot's queue is bounded: a full one refuses with
// RESOURCE_EXHAUSTED. drain() ends the queue for shutdown.

#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "scheduler/infer_job.hpp"

namespace kubeaccel::agent {

class DeviceScheduler {
 public:
  DeviceScheduler(int slots, int workers, size_t maxQueuedPerSlot);
  ~DeviceScheduler();  // stops the workers; queued jobs are answered UNAVAILABLE

  // Queues the job, or returns why not (the job's `done` is then not called).
  grpc::Status submit(InferJob job);
  size_t queued() const;

  // For shutdown: lets the queue run until it is empty or `graceEnd` passes,
  // then answers every job still queued UNAVAILABLE with `why` and refuses
  // new ones. Returns without waiting for a run in progress; its jobs are
  // answered when it ends.
  void drain(std::chrono::steady_clock::time_point graceEnd, const std::string& why);

 private:
  void work();
  // Takes the next job in slot order, plus the jobs that may join its batch.
  std::vector<InferJob> takeBatch(std::unique_lock<std::mutex>& lock);
  void run(std::vector<InferJob>& batch, struct RunnerCache& runners);

  const size_t maxQueued_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::deque<InferJob>> slots_;
  // When each slot last queued a job, and how long the last run took: a slot
  // that queued within a couple of runs still counts as present when a batch
  // is filled, since its next request is usually on its way.
  std::vector<InferJob::Clock::time_point> lastQueued_;
  InferJob::Clock::duration lastRun_{};
  // The gap between the two latest arrivals on the device: waiting for a
  // batch to fill only pays when requests come closer than the delay.
  InferJob::Clock::time_point lastArrival_{};
  InferJob::Clock::duration arrivalGap_ = InferJob::Clock::duration::max();
  size_t queued_ = 0;
  size_t cursor_ = 0;
  int running_ = 0;            // batches being run by workers
  std::string closedReason_;   // set by drain(): submit() refuses with it
  std::condition_variable idle_;  // a run ended or the queue emptied
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace kubeaccel::agent
