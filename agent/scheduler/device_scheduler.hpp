#pragma once
// One device's work queue. Each slot has its own FIFO; slots with waiting
// work share the device's compute time equally (FairShare: the next batch is
// led by the slot charged the least compute so far), so one pod cannot
// starve another however many requests it sends. Jobs of a batched model with
// dynamic batching are merged along dim 0 (up to max_batch_size, waiting at
// most max_queue_delay for a preferred size); FairShare bounds each slot's
// rows in a batch while other slots are present. A joined batch is assembled
// in its worker's BatchBuffer, pinned for the device when the backend pins.
// Jobs past their deadline, and jobs their client cancelled, are answered
// without running. Each slot's queue is bounded: a full one refuses with
// RESOURCE_EXHAUSTED. drain() ends the queue for shutdown.

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "scheduler/batch_buffer.hpp"
#include "scheduler/fair_share.hpp"
#include "scheduler/infer_job.hpp"

namespace kubeaccel::agent {

class DeviceScheduler {
 public:
  // `pinner`: the device's backend's (Backend::hostMemoryPinner), or null;
  // it must outlive the scheduler.
  DeviceScheduler(int slots, int workers, size_t maxQueuedPerSlot, HostMemoryPinner* pinner = nullptr);
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
  // Takes the lead job from the slot FairShare picks, plus the jobs that may
  // join its batch; first waits for an underserved slot's next request (at
  // most its grace). Empty when nothing is left to take.
  std::vector<InferJob> takeBatch(std::unique_lock<std::mutex>& lock);
  // What a run charges: the rows that ran per slot and its compute time.
  struct RunCost {
    FairShare::PerSlot rows;
    FairShare::Ns compute{0};
  };
  RunCost run(std::vector<InferJob>& batch, struct RunnerCache& runners, BatchBuffer& joined);
  // The compute time of one row of `model`, from its recent runs (0 before any).
  FairShare::Ns rowCost(const ServedModel& model) const;

  const size_t maxQueued_;
  HostMemoryPinner* const pinner_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::deque<InferJob>> slots_;
  FairShare fair_;
  // Per model name: a moving average of compute time per row, to estimate
  // what a batch will charge each slot before it runs.
  std::map<std::string, FairShare::Ns> rowCost_;
  // The gap between the two latest arrivals on the device: waiting for a
  // batch to fill only pays when requests come closer than the delay.
  InferJob::Clock::time_point lastArrival_{};
  InferJob::Clock::duration arrivalGap_ = InferJob::Clock::duration::max();
  size_t queued_ = 0;
  int running_ = 0;            // batches being run by workers
  std::string closedReason_;   // set by drain(): submit() refuses with it
  std::condition_variable idle_;  // a run ended or the queue emptied
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace kubeaccel::agent
