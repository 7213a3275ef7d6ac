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

DeviceScheduler::DeviceScheduler(int slots, int workers, size_t maxQueued)
    : maxQueued_(maxQueued),
      slots_(static_cast<size_t>(std::max(slots, 1))),
      lastQueued_(slots_.size()) {
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
    lastQueued_[static_cast<size_t>(job.slot)] = job.enqueued;
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
      for (auto& j : q) left.push_back(std::move(j));
      q.clear();
    }
    queued_ = 0;
  }
  cv_.notify_all();  // a worker filling a batch stops waiting
  auto now = InferJob::Clock::now();
  for (auto& j : left)
    j.done(grpc::Status(grpc::StatusCode::UNAVAILABLE, closedReason_), {}, {now - j.enqueued, {}, 0});
}

std::vector<InferJob> DeviceScheduler::takeBatch(std::unique_lock<std::mutex>& lock) {
  std::vector<InferJob> batch;
  // The lead job: the front of the next non-empty slot after the last one served.
  for (size_t i = 0; i < slots_.size(); ++i) {
    size_t s = (cursor_ + i) % slots_.size();
    if (slots_[s].empty()) continue;
    batch.push_back(std::move(slots_[s].front()));
    slots_[s].pop_front();
    --queued_;
    cursor_ = s + 1;
    break;
  }
  const ServedModel& model = *batch.front().model;
  if (!model.config.dynamicBatching) return batch;

  int64_t rows = batch.front().rows;
  const int64_t max = model.config.maxBatchSize;
  auto preferred = [&](int64_t r) {
    const auto& p = model.config.preferredBatchSizes;
    return r >= max || std::find(p.begin(), p.end(), r) != p.end();
  };
  // Rows each slot has in this batch. A slot may add rows only while it is not
  // ahead of every other slot in the batch: otherwise a pod that keeps many
  // requests queued would fill each batch and take the device in proportion.
  std::map<size_t, int64_t> share{{static_cast<size_t>(batch.front().slot), batch.front().rows}};
  auto now = InferJob::Clock::now();
  auto recent = 2 * lastRun_ + model.config.maxQueueDelay;
  for (size_t s = 0; s < slots_.size(); ++s)
    if (!share.count(s) && now - lastQueued_[s] < recent) share[s] = 0;
  auto mayAdd = [&](size_t s) {
    int64_t mine = share.count(s) ? share[s] : 0;
    for (const auto& [other, r] : share)
      if (other != s && mine > r) return false;
    return true;
  };
  auto waitUntil = batch.front().enqueued + model.config.maxQueueDelay;
  for (;;) {
    // Join the fronts of the slots' queues that ask for the same model, in slot order.
    bool took = true;
    while (took && !preferred(rows)) {
      took = false;
      for (size_t i = 0; i < slots_.size() && !preferred(rows); ++i) {
        size_t s = (cursor_ + i) % slots_.size();
        if (slots_[s].empty() || !mayAdd(s)) continue;
        InferJob& next = slots_[s].front();
        if (!mayJoin(batch.front(), next) || rows + next.rows > max) continue;
        rows += next.rows;
        share[s] += next.rows;
        batch.push_back(std::move(next));
        slots_[s].pop_front();
        --queued_;
        took = true;
      }
    }
    // A lone client sending one request at a time gains nothing by waiting.
    bool more = share.size() > 1 || arrivalGap_ < model.config.maxQueueDelay;
    if (preferred(rows) || stopping_ || !closedReason_.empty() || !more || InferJob::Clock::now() >= waitUntil) break;
    cv_.wait_until(lock, waitUntil);
  }
  return batch;
}

void DeviceScheduler::work() {
  RunnerCache runners;
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stopping_ || queued_ > 0; });
    if (stopping_) return;
    ++running_;
    std::vector<InferJob> batch = takeBatch(lock);
    lock.unlock();
    auto started = InferJob::Clock::now();
    run(batch, runners);
    lock.lock();
    lastRun_ = InferJob::Clock::now() - started;
    --running_;
    idle_.notify_all();
  }
}

namespace {

// Joins the jobs' inputs along dim 0 into `storage`; returns views of it.
std::vector<InputTensor> concatenate(const std::vector<InferJob>& jobs, int64_t rows,
                                     std::vector<std::vector<std::byte>>& storage) {
  std::vector<InputTensor> out;
  size_t n = jobs.front().inputs.size();
  storage.resize(n);
  for (size_t i = 0; i < n; ++i) {
    InputTensor t = jobs.front().inputs[i];
    t.shape[0] = rows;
    // Every job's rows have the lead job's size (takeBatch joins only equal
    // non-batch dims); checked again here, since a wrong size would mix tenants' bytes.
    auto rowBytes = byteCount(t.datatype, std::vector<int64_t>(t.shape.begin() + 1, t.shape.end()));
    size_t total = 0;
    for (const auto& j : jobs) {
      const InputTensor& in = j.inputs[i];
      if (!rowBytes || !sameRowShape(in, t) || in.data.size() != *rowBytes * static_cast<uint64_t>(j.rows))
        throw std::runtime_error("input '" + t.name + "': a request of " + in.datatype + " " + shapeString(in.shape) +
                                 " cannot join a batch of " + t.datatype + " " + shapeString(t.shape));
      total += in.data.size();
    }
    storage[i].resize(total);
    size_t off = 0;
    for (const auto& j : jobs) {
      std::memcpy(storage[i].data() + off, j.inputs[i].data.data(), j.inputs[i].data.size());
      off += j.inputs[i].data.size();
    }
    t.data = storage[i];
    out.push_back(std::move(t));
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

void DeviceScheduler::run(std::vector<InferJob>& batch, RunnerCache& runners) {
  auto start = InferJob::Clock::now();
  // Cancelled and expired jobs are answered, not run.
  std::vector<InferJob> live;
  for (auto& j : batch) {
    if (j.cancelled && j.cancelled()) {
      j.done(grpc::Status(grpc::StatusCode::CANCELLED, "the client cancelled the request while it was queued"), {},
             {start - j.enqueued, {}, 0});
    } else if (start > j.deadline) {
      j.done(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "deadline passed while queued"), {},
             {start - j.enqueued, {}, 0});
    } else {
      live.push_back(std::move(j));
    }
  }
  if (live.empty()) return;
  int64_t rows = 0;
  for (const auto& j : live) rows += j.rows;

  std::vector<OutputTensor> outputs;
  grpc::Status status;
  try {
    ModelRunner& runner = runners.get(live.front().model->loaded);
    std::vector<std::vector<std::byte>> storage;
    outputs = live.size() == 1 ? runner.run(live.front().inputs) : runner.run(concatenate(live, rows, storage));
    if (live.size() > 1)
      for (const auto& o : outputs)
        if (o.shape.empty() || o.shape[0] != rows)
          throw std::runtime_error("output '" + o.name + "' is not batched along dim 0");
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

  int64_t offset = 0;
  for (auto& j : live) {
    JobTiming timing{start - j.enqueued, end - start, static_cast<int>(rows)};
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
}

}  // namespace kubeaccel::agent
