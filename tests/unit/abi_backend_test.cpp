// The agent's side of kab_backend.run_into (agent/backend/abi_backend.cpp):
// an output the engine wrote into its destination comes back in place, one
// it could not comes back copied, an older table without the entry is run as
// before, and an engine that wrote past its destination fails the run.
// The backend here is a hand-made function table: y = x + 1 on FP32 [-1, 2].

#include <gtest/gtest.h>

#include <cstddef>
#include <cstring>
#include <vector>

#include "backend/abi_backend.hpp"
#include "repository/model_config.hpp"

namespace kubeaccel::agent {
namespace {

struct FakeModel {};
struct FakeRunner {};
const int64_t kDims[] = {-1, 2};
const kab_tensor_spec kX{"x", "FP32", kDims, 2}, kY{"y", "FP32", kDims, 2};
const char* const kFiles[] = {"model.fake", nullptr};

// What the fake engine does with its destination.
enum class Writes { Fits, Past };
Writes writes = Writes::Fits;
int runCalls = 0, runIntoCalls = 0;
float own[64];  // the engine's own output memory

int loadModel(const kab_load_args*, kab_model** out, char*, size_t) {
  *out = reinterpret_cast<kab_model*>(new FakeModel);
  return KAB_OK;
}
size_t tensorCount(const kab_model*, int) { return 1; }
const kab_tensor_spec* tensor(const kab_model*, int isOutput, size_t i) { return i ? nullptr : isOutput ? &kY : &kX; }
void limits(const kab_model*, kab_limits* l) { *l = {1, 1 << 20, 1 << 20}; }
const char* info(const kab_model*) { return "fake"; }
void freeModel(kab_model* m) { delete reinterpret_cast<FakeModel*>(m); }
int newRunner(kab_model*, kab_runner** out, char*, size_t) {
  *out = reinterpret_cast<kab_runner*>(new FakeRunner);
  return KAB_OK;
}
void freeRunner(kab_runner* r) { delete reinterpret_cast<FakeRunner*>(r); }

// y = x + 1 into `to`, and the output described as it.
void addOne(const kab_input& x, kab_output& y, float* to) {
  const auto* in = static_cast<const float*>(x.data);
  for (size_t i = 0; i < x.bytes / sizeof(float); ++i) to[i] = in[i] + 1;
  y = kab_output{};
  std::strcpy(y.datatype, "FP32");
  y.rank = x.rank;
  for (size_t d = 0; d < x.rank; ++d) y.shape[d] = x.shape[d];
  y.data = to;
  y.bytes = x.bytes;
}

int run(kab_runner*, const kab_input* in, size_t, kab_output* out, size_t, char*, size_t) {
  ++runCalls;
  addOne(in[0], out[0], own);
  return KAB_OK;
}

int runInto(kab_runner*, const kab_input* in, size_t, kab_output* out, size_t, const kab_destination* dest, char*,
            size_t) {
  ++runIntoCalls;
  bool fits = dest[0].data && dest[0].bytes >= in[0].bytes;
  addOne(in[0], out[0], fits || writes == Writes::Past ? static_cast<float*>(dest[0].data) : own);
  return KAB_OK;
}

kab_backend table(bool withRunInto) {
  kab_backend t{KUBEACCEL_BACKEND_ABI_VERSION, sizeof(kab_backend), "fake", "nowhere", kFiles, loadModel,
                tensorCount, tensor, limits, info, freeModel, newRunner, run, freeRunner, nullptr, nullptr, runInto};
  // An older backend's table ends before run_into.
  if (!withRunInto) t.struct_size = offsetof(kab_backend, run_into);
  return t;
}

struct RunInto : ::testing::Test {
  void SetUp() override {
    writes = Writes::Fits;
    runCalls = runIntoCalls = 0;
  }
  std::vector<OutputTensor> runOnce(const kab_backend& t, std::vector<float> x, OutputDestinations dest) {
    AbiBackend backend(&t, "");
    auto model = backend.load("/nowhere/1", "{}", ModelConfig{});
    auto runner = model->newRunner();
    input = std::move(x);
    std::vector<InputTensor> in{{"x", "FP32", {static_cast<int64_t>(input.size() / 2), 2},
                                 std::as_bytes(std::span(input))}};
    return runner->run(in, dest);
  }
  std::vector<float> input;
};

TEST_F(RunInto, AnOutputThatFitsIsWrittenInPlace) {
  kab_backend t = table(true);
  std::vector<float> region(8, -7.f);
  auto out = runOnce(t, {1, 2, 3, 4}, {std::as_writable_bytes(std::span(region))});
  EXPECT_EQ(runIntoCalls, 1);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].inDestination);
  EXPECT_TRUE(out[0].data.empty());
  EXPECT_EQ(out[0].shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(region, (std::vector<float>{2, 3, 4, 5, -7, -7, -7, -7}));
}

TEST_F(RunInto, AnOutputThatDoesNotFitComesBackCopied) {
  kab_backend t = table(true);
  std::vector<float> region(2, -7.f);  // room for one row of two
  auto out = runOnce(t, {1, 2, 3, 4}, {std::as_writable_bytes(std::span(region))});
  EXPECT_EQ(runIntoCalls, 1);
  EXPECT_FALSE(out[0].inDestination);
  ASSERT_EQ(out[0].data.size(), 4 * sizeof(float));
  EXPECT_EQ(region, (std::vector<float>{-7, -7}));
}

TEST_F(RunInto, AnOlderTableWithoutTheEntryIsRunAsBefore) {
  kab_backend t = table(false);
  std::vector<float> region(8, -7.f);
  auto out = runOnce(t, {1, 2}, {std::as_writable_bytes(std::span(region))});
  EXPECT_EQ(runCalls, 1);
  EXPECT_EQ(runIntoCalls, 0);
  EXPECT_FALSE(out[0].inDestination);
  EXPECT_EQ(out[0].data.size(), 2 * sizeof(float));
}

TEST_F(RunInto, NoDestinationsMeansPlainRun) {
  kab_backend t = table(true);
  auto out = runOnce(t, {1, 2}, {});
  EXPECT_EQ(runCalls, 1);
  EXPECT_EQ(runIntoCalls, 0);
  EXPECT_FALSE(out[0].inDestination);
}

TEST_F(RunInto, AnEngineThatWritesPastItsDestinationFailsTheRun) {
  kab_backend t = table(true);
  writes = Writes::Past;
  std::vector<float> region(16, -7.f);  // a larger buffer, of which the destination is the first two floats
  OutputDestinations dest{std::as_writable_bytes(std::span(region).first(2))};
  try {
    runOnce(t, {1, 2, 3, 4}, dest);
    ADD_FAILURE() << "an output past its destination was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("past its destination"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace kubeaccel::agent
