// The request checks (agent/server/infer_request.cpp) on their own, without a
// server or an engine: what they accept and what they refuse, and why.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "repository/model_config.hpp"
#include "repository/model_repository.hpp"
#include "server/infer_request.hpp"

namespace kubeaccel::agent {
namespace {

class SpecOnlyModel final : public LoadedModel {
 public:
  SpecOnlyModel(std::vector<TensorSpec> in, std::vector<TensorSpec> out) : in_(std::move(in)), out_(std::move(out)) {}
  const std::vector<TensorSpec>& inputs() const override { return in_; }
  const std::vector<TensorSpec>& outputs() const override { return out_; }
  std::unique_ptr<ModelRunner> newRunner() const override { return nullptr; }

 private:
  std::vector<TensorSpec> in_, out_;
};

ServedModel model(const std::string& name, int maxBatch, std::vector<TensorSpec> in, std::vector<TensorSpec> out) {
  ServedModel m;
  m.name = name;
  m.version = 1;
  m.config.maxBatchSize = maxBatch;
  m.loaded = std::make_shared<SpecOnlyModel>(std::move(in), std::move(out));
  return m;
}

// relu: x FP32 [N,M] -> y, max_batch_size 8 (the generated model's signature).
const ServedModel& relu() {
  static const ServedModel m = model("relu", 8, {{"x", "FP32", {-1, -1}}}, {{"y", "FP32", {-1, -1}}});
  return m;
}

inference::ModelInferRequest request(const std::vector<int64_t>& shape, size_t rawBytes) {
  inference::ModelInferRequest r;
  r.set_model_name("relu");
  auto* in = r.add_inputs();
  in->set_name("x");
  in->set_datatype("FP32");
  for (auto d : shape) in->add_shape(d);
  r.add_raw_input_contents(std::string(rawBytes, '\0'));
  return r;
}

class InferRequestTest : public ::testing::Test {
 protected:
  ShmRegistry shm{"/nonexistent"};
  grpc::Status check(const inference::ModelInferRequest& r, const ServedModel& m = relu()) {
    PreparedInfer p;
    return prepareInfer(r, m, shm, &p);
  }
};

TEST(TensorSizes, ByteCountIsOverflowChecked) {
  EXPECT_EQ(byteCount("FP32", {3, 1537228672809129302}), std::nullopt);  // 3 * n * 4 = 2^64 + 8
  EXPECT_EQ(byteCount("FP32", {1, 4611686018427387905}), std::nullopt);  // n * 4 = 2^64 + 4
  EXPECT_EQ(byteCount("FP64", {INT64_MAX}), std::nullopt);
  EXPECT_EQ(byteCount("FP32", {-1, 4}), std::nullopt);
  EXPECT_EQ(byteCount("BYTES", {1}), std::nullopt);
  EXPECT_EQ(byteCount("FP32", {2, 3}), 24u);
  EXPECT_EQ(byteCount("INT8", {}), 1u);
  EXPECT_EQ(byteCount("FP32", {0, 7}), 0u);
  EXPECT_EQ(byteCount("UINT8", {int64_t{1} << 62, 2}), std::nullopt);
  EXPECT_EQ(byteCount("UINT8", {int64_t{1} << 62, 1}), uint64_t{1} << 62);
}

// Issue 9, section 1: one 8-byte request of shape [3, 1537228672809129302].
TEST_F(InferRequestTest, WrappingByteCountIsRefusedNamingTheTensor) {
  grpc::Status s = check(request({3, 1537228672809129302}, 8));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("input 'x'"), std::string::npos) << s.error_message();
  EXPECT_NE(s.error_message().find("2147483647"), std::string::npos) << s.error_message();
}

// Section 11: a sweep of wrong sizes, each sending the wrapped byte count.
TEST_F(InferRequestTest, EveryWrappedSizeIsRefused) {
  int n = 0;
  for (int64_t rows : {1, 2, 4, 8})
    for (int64_t k = 0; k <= 16; ++k) {
      std::vector<int64_t> shape{rows, (int64_t{1} << 62) / rows + k};
      grpc::Status s = check(request(shape, static_cast<size_t>(4 * rows * k)));
      EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << shapeString(shape);
      EXPECT_NE(s.error_message().find("input 'x'"), std::string::npos) << s.error_message();
      ++n;
    }
  EXPECT_EQ(n, 68);
}

// Dims must fit what the engine takes (int), and no tensor may be empty.
TEST_F(InferRequestTest, DimsOutsideTheEngineLimitsAreRefused) {
  for (const std::vector<int64_t>& shape : std::vector<std::vector<int64_t>>{
           {1, int64_t{1} << 31}, {1, 0}, {1, INT64_MAX}, {8, (int64_t{1} << 31) - 1}}) {
    grpc::Status s = check(request(shape, 0));
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << shapeString(shape);
    EXPECT_NE(s.error_message().find("input 'x'"), std::string::npos) << s.error_message();
  }
  grpc::Status s = check(request({2, 5}, 40));
  EXPECT_TRUE(s.ok()) << s.error_message();
}

}  // namespace
}  // namespace kubeaccel::agent

namespace kubeaccel::agent {
namespace {

// Issue 9, section 11: an empty config.json means the defaults.
TEST(ModelConfigTest, EmptyOrWhitespaceMeansTheDefaults) {
  for (const char* text : {"", " ", "\n", " \t\r\n "}) {
    ModelConfig c = parseModelConfig(text, "config.json");
    EXPECT_EQ(c.maxBatchSize, 0);
    EXPECT_FALSE(c.dynamicBatching);
    EXPECT_EQ(c.instanceCount, 1);
  }
  EXPECT_THROW(parseModelConfig("x", "config.json"), std::runtime_error);
  EXPECT_THROW(parseModelConfig("[]", "config.json"), std::runtime_error);
}

// Issue 12: outputs an engine wrote into a pod's pinned shared-memory range
// are answered from there, uncopied; only pinned ranges are offered.
TEST(OutputDestinations, OnlyPinnedRangesAreOfferedInTheModelsOutputOrder) {
  ServedModel m = model("two", 8, {{"x", "FP32", {-1, 2}}}, {{"a", "FP32", {-1, 2}}, {"b", "FP32", {-1, 2}}});
  std::vector<std::byte> region(64);
  PreparedInfer p;
  p.outputs.push_back({"b", ShmView{nullptr, std::span(region).first(16), true}, "r"});
  p.outputs.push_back({"a", ShmView{nullptr, std::span(region).subspan(16, 16), false}, "r"});
  OutputDestinations d = outputDestinations(m, p);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_TRUE(d[0].empty()) << "an unpinned range was offered";
  EXPECT_EQ(d[1].data(), region.data());
  EXPECT_EQ(d[1].size(), 16u);
  p.outputs[0].shm->pinned = false;
  EXPECT_TRUE(outputDestinations(m, p).empty());
}

TEST(OutputDestinations, AnOutputWrittenInPlaceIsAnsweredFromItsRangeUncopied) {
  ServedModel m = model("two", 8, {{"x", "FP32", {-1, 2}}}, {{"a", "FP32", {-1, 2}}});
  std::vector<float> region{9, 9, 9, 9, -1, -1};
  PreparedInfer p;
  p.outputs.push_back({"a", ShmView{nullptr, std::as_writable_bytes(std::span(region).first(4)), true}, "r"});
  std::vector<OutputTensor> outputs{{"a", "FP32", {2, 2}, {}, true}};
  inference::ModelInferRequest req;
  inference::ModelInferResponse resp;
  ASSERT_TRUE(buildInferResponse(req, m, p, outputs, &resp).ok());
  EXPECT_EQ(region, (std::vector<float>{9, 9, 9, 9, -1, -1})) << "the engine's bytes were overwritten";
  ASSERT_EQ(resp.outputs_size(), 1);
  EXPECT_EQ(resp.outputs(0).parameters().at("shared_memory_byte_size").int64_param(), 16);
  EXPECT_TRUE(resp.raw_output_contents(0).empty());

  // A shape past the range is refused, as a copied output would be.
  outputs[0].shape = {3, 2};
  resp.Clear();
  EXPECT_EQ(buildInferResponse(req, m, p, outputs, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  // In place but never asked for in shared memory: the agent's own fault.
  PreparedInfer raw;
  raw.outputs.push_back({"a", std::nullopt, ""});
  resp.Clear();
  EXPECT_EQ(buildInferResponse(req, m, raw, outputs, &resp).error_code(), grpc::StatusCode::INTERNAL);
}

// The device's write into a pod's range cannot fault, so a file the pod cut
// short during the run must still be noticed when the answer is built: the
// in-place output is read once, which the SIGBUS guard turns into the
// truncation the request then fails with.
TEST(OutputDestinations, AFileCutShortUnderAnInPlaceOutputIsNoticed) {
  namespace fs = std::filesystem;
  char tmpl[] = "/tmp/inplace_output_test.XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  fs::path slot = tmpl;
  fs::permissions(slot, fs::perms::all);
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  {
    int fd = ::open((slot / "out").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0666);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(4 * page)), 0);
    ::close(fd);
  }
  struct Pinner final : HostMemoryPinner {
    std::string pin(void*, size_t, bool* unavailable) override {
      *unavailable = false;
      return "";
    }
    void unpin(void*) override {}
  } pinner;
  ShmRegistry shm(slot.string(), 4, 1 << 20, &pinner);
  ASSERT_TRUE(shm.registerRegion("r", "out", 0, 4 * page).ok());
  ServedModel m = model("one", 8, {{"x", "FP32", {-1, 2}}}, {{"a", "FP32", {-1, -1}}});
  PreparedInfer p;
  ShmView v;
  ASSERT_TRUE(shm.view("r", page, 3 * page, &v).ok());
  EXPECT_TRUE(v.pinned);
  p.outputs.push_back({"a", v, "r"});
  ASSERT_EQ(outputDestinations(m, p).size(), 1u);

  ASSERT_EQ(::truncate((slot / "out").c_str(), 0), 0);  // the pod cuts its file during the run
  std::vector<OutputTensor> outputs{{"a", "FP32", {1, static_cast<int64_t>(3 * page / 4)}, {}, true}};
  inference::ModelInferRequest req;
  inference::ModelInferResponse resp;
  EXPECT_TRUE(buildInferResponse(req, m, p, outputs, &resp).ok());
  EXPECT_TRUE(ShmRegistry::truncated(p.outputs[0].shm.value())) << "the cut file went unnoticed";
  p.outputs.clear();
  v = {};
  std::error_code ec;
  fs::remove_all(slot, ec);
}

// Issue 12: CUDA graphs are on by default on CUDA, can be turned off, and are
// refused where they cannot apply.
TEST(ModelConfigTest, CudaGraphsDefaultOnForCudaOnly) {
  EXPECT_FALSE(parseModelConfig("{}", "config.json").cudaGraphs);
  EXPECT_TRUE(parseModelConfig(R"({"device": "cuda"})", "config.json").cudaGraphs);
  EXPECT_FALSE(parseModelConfig(R"({"device": "cuda", "cuda_graphs": false})", "config.json").cudaGraphs);
  try {
    parseModelConfig(R"({"device": "cpu", "cuda_graphs": true})", "m/config.json");
    ADD_FAILURE() << "cuda_graphs on cpu was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("cuda_graphs"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parseModelConfig(R"({"device": "cuda", "cuda_graphs": 1})", "config.json"), std::runtime_error);
}

// Issue 9, section 7: model names are folder names the file system reads as written.
TEST(ModelNameTest, OnlySafeNamesAreValid) {
  for (const std::string& good :
       std::vector<std::string>{"tiny", "resnet-50_v1.5", "A", std::string(255, 'a')})
    EXPECT_TRUE(ModelRepository::validName(good)) << good;
  for (const std::string& bad :
       std::vector<std::string>{std::string("tiny\0x", 6), "", ".", "..", ".hidden", "a/b", "tiny\n",
                                std::string(256, 'a'), "t\xc3\xa9"})
    EXPECT_FALSE(ModelRepository::validName(bad)) << bad;
  EXPECT_NE(ModelRepository::nameRule(std::string("tiny\0x", 6)).find("tiny\\x00x"), std::string::npos);
}

}  // namespace
}  // namespace kubeaccel::agent
