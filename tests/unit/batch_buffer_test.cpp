// A worker's batch buffer (agent/scheduler/batch_buffer.*) and its use by the
// DeviceScheduler: joined batches are assembled in memory pinned through the
// backend, and each job still gets its own rows back.

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <future>
#include <map>
#include <mutex>

#include "backend/backend.hpp"
#include "scheduler/batch_buffer.hpp"
#include "scheduler/device_scheduler.hpp"

namespace kubeaccel::agent {
namespace {

// Records what is pinned, as a backend's pin_host_memory would be asked.
class RecordingPinner final : public HostMemoryPinner {
 public:
  std::string failWith;  // non-empty: pin() fails with this reason
  std::string pin(void* ptr, size_t bytes, bool* unavailable) override {
    *unavailable = false;
    std::lock_guard lock(mu);
    ++pins;
    if (!failWith.empty()) return failWith;
    pinned[ptr] = bytes;
    return "";
  }
  void unpin(void* ptr) override {
    std::lock_guard lock(mu);
    ++unpins;
    EXPECT_EQ(pinned.erase(ptr), 1u) << "unpinned what was not pinned";
  }
  // Whether [p, p + n) lies inside one pinned range.
  bool covers(const void* p, size_t n) {
    std::lock_guard lock(mu);
    auto* b = static_cast<const std::byte*>(p);
    for (const auto& [at, size] : pinned) {
      auto* a = static_cast<const std::byte*>(at);
      if (b >= a && b + n <= a + size) return true;
    }
    return false;
  }
  std::mutex mu;
  std::map<void*, size_t> pinned;
  int pins = 0, unpins = 0;
};

TEST(BatchBuffer, GrowsPageAlignedAndKeepsWhatItPinnedPinnedUntilItGrowsOrGoes) {
  RecordingPinner pinner;
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  {
    BatchBuffer buffer(&pinner);
    auto a = buffer.reserve(1000, true);
    ASSERT_GE(a.size(), 1000u);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(a.data()) % page, 0u);
    EXPECT_TRUE(buffer.pinned());
    EXPECT_TRUE(pinner.covers(a.data(), a.size()));
    std::memset(a.data(), 0xab, a.size());

    // Smaller or equal: the same memory, no new pin.
    auto b = buffer.reserve(a.size(), true);
    EXPECT_EQ(b.data(), a.data());
    EXPECT_EQ(pinner.pins, 1);

    // Larger: new memory, pinned; the old range is unpinned.
    auto c = buffer.reserve(a.size() + 1, true);
    EXPECT_GE(c.size(), a.size() + 1);
    EXPECT_EQ(c.size() % page, 0u);
    EXPECT_EQ(pinner.pins, 2);
    EXPECT_EQ(pinner.unpins, 1);
    EXPECT_TRUE(pinner.covers(c.data(), c.size()));
    EXPECT_EQ(pinner.pinned.size(), 1u);
  }
  EXPECT_EQ(pinner.unpins, 2);
  EXPECT_TRUE(pinner.pinned.empty());
}

TEST(BatchBuffer, MemoryThatCannotBePinnedIsStillUsable) {
  RecordingPinner pinner;
  pinner.failWith = "cudaHostRegister: invalid argument";
  BatchBuffer buffer(&pinner);
  auto a = buffer.reserve(5000, true);
  EXPECT_FALSE(buffer.pinned());
  std::memset(a.data(), 1, a.size());
  BatchBuffer unpinnable(nullptr);
  EXPECT_GE(unpinnable.reserve(10, true).size(), 10u);
  EXPECT_FALSE(unpinnable.pinned());
}

TEST(BatchBuffer, OnlyPinnedMemoryIsKeptAfterARun) {
  RecordingPinner pinner;
  BatchBuffer pinned(&pinner);
  auto a = pinned.reserve(100, true);
  pinned.runEnded();
  EXPECT_EQ(pinned.reserve(100, true).data(), a.data()) << "pinned memory was not kept for the next batch";
  EXPECT_EQ(pinner.pins, 1);

  // Memory for a model that is not on a GPU is not pinned, and not kept.
  BatchBuffer forCpu(&pinner);
  auto c = forCpu.reserve(100, false);
  EXPECT_FALSE(forCpu.pinned());
  EXPECT_EQ(pinner.pins, 1);
  std::memset(c.data(), 1, c.size());
  forCpu.runEnded();

  // Pinned, but more than is worth keeping: given back.
  BatchBuffer big(&pinner);
  big.reserve(BatchBuffer::kMaxKeptBytes + 1, true);
  EXPECT_TRUE(big.pinned());
  big.runEnded();
  EXPECT_FALSE(big.pinned());
  EXPECT_EQ(pinner.pinned.size(), 1u) << "the big buffer's pages stayed pinned";

  // Unpinned memory is unmapped after the run: touching it would fault.
  BatchBuffer plain(nullptr);
  auto b = plain.reserve(1 << 20, true);
  std::memset(b.data(), 1, b.size());
  plain.runEnded();
  volatile std::byte* first = b.data();
  EXPECT_DEATH(*first = std::byte{2}, "") << "unpinned memory outlived its run";
}

// A model of one FP32 input [-1, 4] that returns its input + 1 and records,
// for each run, its rows and whether its input sat in pinned memory.
struct Run {
  int64_t rows;
  bool inPinnedMemory;
};

class RecordingModel final : public LoadedModel {
 public:
  explicit RecordingModel(RecordingPinner& p) : pinner_(p) {}
  const std::vector<TensorSpec>& inputs() const override { return in_; }
  const std::vector<TensorSpec>& outputs() const override { return out_; }
  std::unique_ptr<ModelRunner> newRunner() const override { return std::make_unique<Runner>(*this); }
  std::promise<void> firstRunStarted;
  std::shared_future<void> letFirstRunEnd;
  mutable std::mutex mu;
  mutable std::vector<Run> runs;

 private:
  struct Runner final : ModelRunner {
    explicit Runner(const RecordingModel& m) : m(m) {}
    std::vector<OutputTensor> run(const std::vector<InputTensor>& inputs, const OutputDestinations&) override {
      const InputTensor& x = inputs.at(0);
      bool first;
      {
        std::lock_guard lock(m.mu);
        first = m.runs.empty();
        m.runs.push_back({x.shape[0], m.pinner_.covers(x.data.data(), x.data.size())});
      }
      if (first) {
        const_cast<RecordingModel&>(m).firstRunStarted.set_value();
        m.letFirstRunEnd.wait();
      }
      OutputTensor y{"y", "FP32", x.shape, std::vector<std::byte>(x.data.size())};
      const auto* in = reinterpret_cast<const float*>(x.data.data());
      auto* out = reinterpret_cast<float*>(y.data.data());
      for (size_t i = 0; i < x.data.size() / sizeof(float); ++i) out[i] = in[i] + 1;
      return {y};
    }
    const RecordingModel& m;
  };
  RecordingPinner& pinner_;
  std::vector<TensorSpec> in_{{"x", "FP32", {-1, 4}}}, out_{{"y", "FP32", {-1, 4}}};
};

TEST(DeviceSchedulerBatches, AJoinedBatchIsAssembledInPinnedMemoryAndEachJobGetsItsOwnRows) {
  RecordingPinner pinner;
  auto recording = std::make_shared<RecordingModel>(pinner);
  std::promise<void> release;
  recording->letFirstRunEnd = release.get_future().share();
  auto model = std::make_shared<ServedModel>();
  model->name = "m";
  model->version = 1;
  model->config.maxBatchSize = 8;
  model->config.device = "cuda";  // pinned for the GPU's DMA; nothing here touches a GPU
  model->config.dynamicBatching = true;
  model->config.maxQueueDelay = std::chrono::milliseconds(50);
  model->loaded = recording;
  model->stats = std::make_shared<ModelStatistics>();

  const int slots = 3;
  DeviceScheduler scheduler(slots, /*workers=*/1, /*maxQueuedPerSlot=*/4, &pinner);
  std::vector<std::vector<float>> data(slots);
  std::vector<std::promise<std::vector<float>>> answers(slots);
  auto submit = [&](int slot) {
    data[slot] = {float(slot * 10), float(slot * 10 + 1), float(slot * 10 + 2), float(slot * 10 + 3)};
    InferJob job;
    job.model = model;
    job.slot = slot;
    job.rows = 1;
    job.inputs = {{"x", "FP32", {1, 4}, std::as_bytes(std::span(data[slot]))}};
    job.done = [&answers, slot](grpc::Status s, std::vector<OutputTensor> out, const JobTiming&) {
      ASSERT_TRUE(s.ok()) << s.error_message();
      const auto* f = reinterpret_cast<const float*>(out.at(0).data.data());
      answers[slot].set_value(std::vector<float>(f, f + out.at(0).data.size() / sizeof(float)));
    };
    ASSERT_TRUE(scheduler.submit(std::move(job)).ok());
  };
  // Slot 0's job runs alone and holds the worker while slots 1 and 2 queue.
  submit(0);
  recording->firstRunStarted.get_future().wait();
  submit(1);
  submit(2);
  release.set_value();
  for (int s = 0; s < slots; ++s) {
    std::vector<float> want{float(s * 10 + 1), float(s * 10 + 2), float(s * 10 + 3), float(s * 10 + 4)};
    EXPECT_EQ(answers[s].get_future().get(), want) << "slot " << s;
  }
  std::lock_guard lock(recording->mu);
  ASSERT_EQ(recording->runs.size(), 2u);
  EXPECT_EQ(recording->runs[0].rows, 1);
  EXPECT_FALSE(recording->runs[0].inPinnedMemory) << "a lone job runs from its request's own bytes";
  EXPECT_EQ(recording->runs[1].rows, 2);
  EXPECT_TRUE(recording->runs[1].inPinnedMemory) << "the joined batch was not assembled in pinned memory";
}

}  // namespace
}  // namespace kubeaccel::agent
