#include "scheduler/device_scheduler.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <map>

namespace kubeaccel::agent {

// Each worker keeps its own runner (its own engine instance) per loaded model.
struct RunnerCache {
  struct Item {
    std::weak_ptr<const LoadedModel> model;
    std::unique_ptr<ModelRunner> runner;
  };
  std::map<const LoadedModel*, Item> items;

  ModelRunner& get(const std::shared_ptr<const LoadedModel>& m) {
    std::erase_if(items, [](const auto& kv) { return kv.second.model.expired(); });  // reloaded or unloaded
    auto& item = items[m.get()];
    if (!item.runner) item = {m, m->newRunner()};
    return *item.runner;
  }
};

namespace {

// One row of `a` and one of `b` have the same datatype and dims (all but dim 0).
bool sameRowShape(const InputTensor& a, const InputTensor& b) {
  return a.datatype == b.datatype && a.shape.size() == b.shape.size() && !a.shape.empty() &&
         std::equal(a.shape.begin() + 1, a.shape.end(), b.shape.begin() + 1);
}

// Requests may share a run only when each input's rows have the same
// datatype and dims: a model with a free non-batch dim ([N,M]) must never
// run [1,4000] and [1,4] as one [2,4000] tensor, which would hand one
// tenant's bytes to the other.
bool mayJoin(const InferJob& lead, const InferJob& next) {
  if (next.model != lead.model || next.inputs.size() != lead.inputs.size()) return false;
  for (size_t i = 0; i < lead.inputs.size(); ++i)
    if (!sameRowShape(lead.inputs[i], next.inputs[i])) return false;
  return true;
}

}  // namespace

DeviceScheduler::DeviceScheduler(int slots, int workers, size_t maxQueued, HostMemoryPinner* pinner)
    : maxQueued_(maxQueued),
      pinner_(pinner),
      slots_(static_cast<size_t>(std::max(slots, 1))),
      fair_(slots_.size()) {
  for (int i = 0; i < std::max(workers, 1); ++i) workers_.emplace_back([this] { work(); });
}

DeviceScheduler::~DeviceScheduler() {
  std::vector<InferJob> left;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    for (auto& q : slots_)
      for (auto& j : q) left.push_back(std::move(j));
    for (auto& q : slots_) q.clear();
    queued_ = 0;
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
  for (auto& j : left) j.done(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the device went away"), {}, {});
}

grpc::Status DeviceScheduler::submit(InferJob job) {
  if (job.slot < 0 || static_cast<size_t>(job.slot) >= slots_.size())
    return grpc::Status(grpc::StatusCode::INTERNAL, "no such slot");
  {
    std::lock_guard lock(mu_);
    if (stopping_) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the device went away");
    if (!closedReason_.empty()) return grpc::Status(grpc::StatusCode::UNAVAILABLE, closedReason_);
    // Each slot has its own bound, so one pod cannot fill the device's queue for the others.
    if (slots_[job.slot].size() >= maxQueued_)
      return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                          "this slot's queue is full (" + std::to_string(maxQueued_) + " requests); retry later");
    job.enqueued = InferJob::Clock::now();
    arrivalGap_ = job.enqueued - lastArrival_;
    lastArrival_ = job.enqueued;
    fair_.queued(static_cast<size_t>(job.slot), job.enqueued);
    slots_[job.slot].push_back(std::move(job));
    ++queued_;
  }
  // All: a worker waiting to fill a batch of another model must not be the
  // only one woken.
  cv_.notify_all();
  return grpc::Status::OK;
}

size_t DeviceScheduler::queued() const {
  std::lock_guard lock(mu_);
  return queued_;
}

void DeviceScheduler::drain(std::chrono::steady_clock::time_point graceEnd, const std::string& why) {
  std::vector<InferJob> left;
  {
    std::unique_lock lock(mu_);
    idle_.wait_until(lock, graceEnd, [this] { return queued_ == 0 && running_ == 0; });
    closedReason_ = why.empty() ? "shutting down" : why;
    for (auto& q : slots_) {
      for (auto& j : q) {
        fair_.dropped(static_cast<size_t>(j.slot));
        left.push_back(std::move(j));
      }
      q.clear();
    }
    queued_ = 0;
  }
  cv_.notify_all();  // a worker filling a batch stops waiting
  auto now = InferJob::Clock::now();
  for (auto& j : left)
    j.done(grpc::Status(grpc::StatusCode::UNAVAILABLE, closedReason_), {}, {.queue = now - j.enqueued});
}

std::vector<InferJob> DeviceScheduler::takeBatch(std::unique_lock<std::mutex>& lock) {
  std::vector<InferJob> batch;
  // An underserved slot whose client is between two requests: wait for its
  // next one (charged to it) rather than hand the device to the others.
  while (!stopping_ && closedReason_.empty()) {
    auto awaited = fair_.awaited(InferJob::Clock::now());
    if (!awaited) break;
    auto from = InferJob::Clock::now();
    cv_.wait_until(lock, awaited->until);
    fair_.chargeWait(awaited->slot, InferJob::Clock::now() - from);
  }
  auto lead = fair_.next();
  if (!lead || stopping_) return batch;
  const size_t first = *lead;
  batch.push_back(std::move(slots_[first].front()));
  slots_[first].pop_front();
  fair_.taken(first);
  --queued_;
  const ServedModel& model = *batch.front().model;
  if (!model.config.dynamicBatching) return batch;

  int64_t rows = batch.front().rows;
  const int64_t max = model.config.maxBatchSize;
  auto preferred = [&](int64_t r) {
    const auto& p = model.config.preferredBatchSizes;
    return r >= max || std::find(p.begin(), p.end(), r) != p.end();
  };
  // Rows each slot has in this batch: FairShare bounds them, so that a pod
  // that keeps many requests queued cannot fill each batch while another
  // pod is present.
  FairShare::PerSlot share{{first, batch.front().rows}};
  const FairShare::Ns cost = rowCost(model);
  auto waitUntil = batch.front().enqueued + model.config.maxQueueDelay;
  for (;;) {
    // Join the fronts of the slots' queues that ask for the same model, in
    // slot order from the lead, pass after pass.
    bool took = true;
    while (took && !preferred(rows)) {
      took = false;
      for (size_t i = 0; i < slots_.size() && !preferred(rows); ++i) {
        size_t s = (first + i) % slots_.size();
        if (slots_[s].empty()) continue;
        InferJob& next = slots_[s].front();
        if (!mayJoin(batch.front(), next) || rows + next.rows > max ||
            !fair_.mayAdd(s, next.rows, share, cost, InferJob::Clock::now()))
          continue;
        rows += next.rows;
        share[s] += next.rows;
        batch.push_back(std::move(next));
        slots_[s].pop_front();
        fair_.taken(s);
        --queued_;
        took = true;
      }
    }
    // A lone client sending one request at a time gains nothing by waiting.
    bool more = fair_.othersPresent(first, InferJob::Clock::now()) || arrivalGap_ < model.config.maxQueueDelay;
    if (preferred(rows) || stopping_ || !closedReason_.empty() || !more || InferJob::Clock::now() >= waitUntil) break;
    cv_.wait_until(lock, waitUntil);
  }
  return batch;
}

FairShare::Ns DeviceScheduler::rowCost(const ServedModel& model) const {
  auto it = rowCost_.find(model.name);
  return it == rowCost_.end() ? FairShare::Ns(0) : it->second;
}

void DeviceScheduler::work() {
  RunnerCache runners;
  BatchBuffer joined(pinner_);
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stopping_ || queued_ > 0; });
    if (stopping_) return;
    ++running_;
    std::vector<InferJob> batch = takeBatch(lock);
    if (batch.empty()) {
      --running_;
      idle_.notify_all();
      continue;
    }
    FairShare::PerSlot jobs;
    for (const auto& j : batch) ++jobs[static_cast<size_t>(j.slot)];
    const std::string model = batch.front().model->name;
    lock.unlock();
    RunCost cost = run(batch, runners, joined);
    joined.runEnded();
    lock.lock();
    fair_.finished(jobs, cost.rows, cost.compute, InferJob::Clock::now());
    int64_t rows = 0;
    for (const auto& [slot, r] : cost.rows) rows += r;
    if (rows > 0) {
      // A moving average (1/4 weight to the newest run): costs vary with batch size and load.
      FairShare::Ns perRow = cost.compute / rows;
      auto [it, fresh] = rowCost_.try_emplace(model, perRow);
      if (!fresh) it->second = (3 * it->second + perRow) / 4;
    }
    --running_;
    idle_.notify_all();
  }
}

namespace {

// Joins the jobs' inputs along dim 0 into `joined`; returns views of it.
std::vector<InputTensor> concatenate(const std::vector<InferJob>& jobs, int64_t rows, BatchBuffer& joined,
                                     bool pin) {
  // Each input starts on a 64-byte boundary of the buffer.
  auto aligned = [](size_t n) { return (n + 63) / 64 * 64; };
  std::vector<InputTensor> out;
  size_t n = jobs.front().inputs.size();
  std::vector<size_t> offsets;
  size_t total = 0;
  for (size_t i = 0; i < n; ++i) {
    InputTensor t = jobs.front().inputs[i];
    t.shape[0] = rows;
    // Every job's rows have the lead job's size (takeBatch joins only equal
    // non-batch dims); checked again here, since a wrong size would mix tenants' bytes.
    auto rowBytes = byteCount(t.datatype, std::vector<int64_t>(t.shape.begin() + 1, t.shape.end()));
    size_t bytes = 0;
    for (const auto& j : jobs) {
      const InputTensor& in = j.inputs[i];
      if (!rowBytes || !sameRowShape(in, t) || in.data.size() != *rowBytes * static_cast<uint64_t>(j.rows))
        throw std::runtime_error("input '" + t.name + "': a request of " + in.datatype + " " + shapeString(in.shape) +
                                 " cannot join a batch of " + t.datatype + " " + shapeString(t.shape));
      bytes += in.data.size();
    }
    offsets.push_back(total);
    t.data = {static_cast<const std::byte*>(nullptr), bytes};
    out.push_back(std::move(t));
    total += aligned(bytes);
  }
  std::span<std::byte> memory = joined.reserve(total, pin);
  for (size_t i = 0; i < n; ++i) {
    std::byte* at = memory.data() + offsets[i];
    out[i].data = {at, out[i].data.size()};
    for (const auto& j : jobs) {
      std::memcpy(at, j.inputs[i].data.data(), j.inputs[i].data.size());
      at += j.inputs[i].data.size();
    }
  }
  return out;
}

// Job k's rows [offset, offset + rows) of a batched output.
OutputTensor slice(const OutputTensor& all, int64_t offset, int64_t rows, int64_t totalRows) {
  OutputTensor t{all.name, all.datatype, all.shape, {}};
  size_t rowBytes = totalRows > 0 ? all.data.size() / static_cast<size_t>(totalRows) : 0;
  t.shape[0] = rows;
  auto begin = all.data.begin() + static_cast<std::ptrdiff_t>(offset * rowBytes);
  t.data.assign(begin, begin + static_cast<std::ptrdiff_t>(rows * rowBytes));
  return t;
}

}  // namespace

DeviceScheduler::RunCost DeviceScheduler::run(std::vector<InferJob>& batch, RunnerCache& runners, BatchBuffer& joined) {
  auto start = InferJob::Clock::now();
  // Cancelled and expired jobs are answered, not run.
  std::vector<InferJob> live;
  for (auto& j : batch) {
    if (j.cancelled && j.cancelled()) {
      j.done(grpc::Status(grpc::StatusCode::CANCELLED, "the client cancelled the request while it was queued"), {},
             {.queue = start - j.enqueued});
    } else if (start > j.deadline) {
      j.done(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "deadline passed while queued"), {},
             {.queue = start - j.enqueued});
    } else {
      live.push_back(std::move(j));
    }
  }
  if (live.empty()) return {};
  int64_t rows = 0;
  for (const auto& j : live) rows += j.rows;

  std::vector<OutputTensor> outputs;
  grpc::Status status;
  try {
    ModelRunner& runner = runners.get(live.front().model->loaded);
    // Joined in pinned memory only for a model on a GPU: pinning is for its DMA.
    const bool pin = live.front().model->config.device == "cuda";
    outputs = live.size() == 1 ? runner.run(live.front().inputs, live.front().outputDestinations)
                               : runner.run(concatenate(live, rows, joined, pin), {});
    if (live.size() > 1)
      for (const auto& o : outputs)
        if (o.shape.empty() || o.shape[0] != rows)
          throw std::runtime_error("output '" + o.name + "' is not batched along dim 0");
  } catch (const std::bad_alloc&) {
    status = grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                          "inference failed: the agent has no host memory for a batch of " + std::to_string(rows) +
                              " rows; retry, or send fewer rows");
    spdlog::warn("model {}: no host memory to join a batch of {} rows", live.front().model->name, rows);
  } catch (const EngineOutOfMemory& e) {
    // Only this batch fails; the engine has given its memory back.
    status = grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, std::string("inference failed: ") + e.what());
    spdlog::warn("model {}: {}", live.front().model->name, e.what());
  } catch (const std::exception& e) {
    status = grpc::Status(grpc::StatusCode::INTERNAL, std::string("inference failed: ") + e.what());
    spdlog::warn("model {}: {}", live.front().model->name, e.what());
  }
  auto end = InferJob::Clock::now();
  // Only a run that gave outputs is an execution (and a batch, and compute time).
  if (status.ok()) live.front().model->stats->recordExecution(static_cast<uint64_t>(rows), end - start);

  RunCost cost{{}, end - start};
  for (const auto& j : live) cost.rows[static_cast<size_t>(j.slot)] += j.rows;
  int64_t offset = 0;
  for (auto& j : live) {
    JobTiming timing{.queue = start - j.enqueued,
                     .compute = end - start,
                     .charged = (end - start) * j.rows / rows,
                     .batchSize = static_cast<int>(rows)};
    if (!status.ok()) {
      j.done(status, {}, timing);
      continue;
    }
    if (live.size() == 1) {
      j.done(grpc::Status::OK, std::move(outputs), timing);
      break;
    }
    std::vector<OutputTensor> mine;
    for (const auto& o : outputs) mine.push_back(slice(o, offset, j.rows, rows));
    offset += j.rows;
    j.done(grpc::Status::OK, std::move(mine), timing);
  }
  return cost;
}

}  // namespace kubeaccel::agent
