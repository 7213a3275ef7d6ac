// The torch backend through the agent's slot sockets: answers equal libtorch
// run in this process on the same files (raw, typed and shared-memory
// tensors), and dynamic batching across two slots.
#include <latch>

#include "torch_fixture.hpp"

namespace kubeaccel::testing {
namespace {

FloatTensor image(unsigned seed) { return {{1, 3, 224, 224}, randomFloats(kSqueezeRow, seed)}; }

TEST_F(TorchAgentTest, SqueezeNetAndResNet18EqualInProcessLibtorch) {
  prepare({"squeezenet", "resnet18"});
  startTorch();
  for (const auto& [model, input] : {std::pair{"squeezenet", "data"}, std::pair{"resnet18", "input"}}) {
    SCOPED_TRACE(model);
    TorchReference ref(torchFile(model));
    for (int slot : {0, 1}) {
      auto in = image(40 + slot);
      inference::ModelInferResponse resp;
      auto got = Client(socket(slot)).inferFloats(model, input, in.shape, in.data, &resp);
      auto want = ref.run({in}, {"logits"});
      ASSERT_EQ(want.at(0).data.size(), 1000u);
      EXPECT_TRUE(closeTo(got, want[0].data));
      ASSERT_EQ(resp.outputs_size(), 1);
      EXPECT_EQ(resp.outputs(0).name(), "logits");
      EXPECT_EQ(resp.outputs(0).datatype(), "FP32");
      EXPECT_EQ(std::vector<int64_t>(resp.outputs(0).shape().begin(), resp.outputs(0).shape().end()),
                (std::vector<int64_t>{1, 1000}));
    }
  }
}

// Two inputs, two outputs the model returns as a dict, declared in another order.
TEST_F(TorchAgentTest, TwoInputModelEqualsInProcessRawAndTyped) {
  prepare({"pair"});
  startTorch();
  TorchReference ref(torchFile("pair"));
  FloatTensor a{{3, 4}, randomFloats(12, 7)}, b{{3, 4}, randomFloats(12, 8)};
  auto want = ref.run({a, b}, {"sum", "diff"});
  Client c(socket(0));
  for (bool typed : {false, true}) {
    SCOPED_TRACE(typed ? "typed contents" : "raw contents");
    inference::ModelInferRequest req;
    req.set_model_name("pair");
    for (const auto& [name, t] : {std::pair{"a", &a}, std::pair{"b", &b}}) {
      auto* in = req.add_inputs();
      in->set_name(name);
      in->set_datatype("FP32");
      for (auto d : t->shape) in->add_shape(d);
      if (typed)
        for (float v : t->data) in->mutable_contents()->add_fp32_contents(v);
      else
        req.add_raw_input_contents(bytesOf(t->data));
    }
    inference::ModelInferResponse resp;
    grpc::Status s = c.infer(req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    ASSERT_EQ(resp.outputs_size(), 2);
    ASSERT_EQ(resp.raw_output_contents_size(), 2);
    EXPECT_EQ(resp.outputs(0).name(), "sum");
    EXPECT_EQ(resp.outputs(1).name(), "diff");
    EXPECT_TRUE(closeTo(floatsOf(resp.raw_output_contents(0)), want[0].data));
    EXPECT_TRUE(closeTo(floatsOf(resp.raw_output_contents(1)), want[1].data));
    // sum is a + b exactly: the mapping by name is not a swap.
    for (size_t i = 0; i < 12; ++i) EXPECT_EQ(floatsOf(resp.raw_output_contents(0))[i], a.data[i] + b.data[i]);
  }
}

TEST_F(TorchAgentTest, SharedMemoryEqualsInProcess) {
  prepare({"squeezenet"});
  startTorch();
  auto in = image(77);
  auto want = TorchReference(torchFile("squeezenet")).run({in}, {"logits"});
  Client c(socket(1));
  const size_t inBytes = in.data.size() * 4, outOff = 64 + inBytes, outBytes = 4000;
  const std::string file = shmDir(1) + "/torch.shm";
  {
    std::string contents(outOff + outBytes, '\0');
    std::memcpy(contents.data() + 64, in.data.data(), inBytes);
    std::ofstream(file, std::ios::binary) << contents;
  }
  ASSERT_TRUE(c.registerRegion("io", "torch.shm", 0, outOff + outBytes).ok());
  inference::ModelInferRequest req;
  req.set_model_name("squeezenet");
  auto* i = req.add_inputs();
  i->set_name("data");
  i->set_datatype("FP32");
  for (auto d : in.shape) i->add_shape(d);
  (*i->mutable_parameters())["shared_memory_region"].set_string_param("io");
  (*i->mutable_parameters())["shared_memory_offset"].set_int64_param(64);
  auto* o = req.add_outputs();
  o->set_name("logits");
  (*o->mutable_parameters())["shared_memory_region"].set_string_param("io");
  (*o->mutable_parameters())["shared_memory_offset"].set_int64_param(static_cast<int64_t>(outOff));
  (*o->mutable_parameters())["shared_memory_byte_size"].set_int64_param(static_cast<int64_t>(outBytes));
  inference::ModelInferResponse resp;
  grpc::Status s = c.infer(req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  std::ifstream f(file, std::ios::binary);
  std::string back((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  ASSERT_EQ(back.size(), outOff + outBytes);
  std::vector<float> got(1000);
  std::memcpy(got.data(), back.data() + outOff, outBytes);
  EXPECT_TRUE(closeTo(got, want[0].data));
  // The region was offered to the backend for pinning (docs/gpu.md): with a
  // CPU-only libtorch there is nothing to pin for, and the log says so.
  std::string log = logIfAny();
  EXPECT_TRUE(log.find("shared memory region 'io': not pinned: this torch backend was built without CUDA") !=
                  std::string::npos ||
              (log.find("shared memory region 'io': ") != std::string::npos &&
                  log.find("pinned for the device") != std::string::npos))
      << log;
}

// pair batches dynamically (20 ms window): eight clients on two slots, each
// with its own input, get their own answers from fewer runs.
TEST_F(TorchAgentTest, DynamicBatchingAcrossTwoSlotsKeepsEachAnswerItsOwn) {
  prepare({"pair"});
  startTorch();
  TorchReference ref(torchFile("pair"));
  constexpr int n = 8;
  std::vector<std::unique_ptr<Client>> clients;
  for (int k = 0; k < n; ++k) clients.push_back(std::make_unique<Client>(socket(k % 2)));
  std::vector<FloatTensor> as, bs;
  for (int k = 0; k < n; ++k) {
    as.push_back({{1, 4}, randomFloats(4, 500 + k)});
    bs.push_back({{1, 4}, randomFloats(4, 600 + k)});
  }
  std::vector<grpc::Status> st(n);
  std::vector<inference::ModelInferResponse> resp(n);
  std::latch go(n);
  std::vector<std::thread> threads;
  for (int k = 0; k < n; ++k)
    threads.emplace_back([&, k] {
      inference::ModelInferRequest req = inferRequest("pair", "a", {1, 4}, bytesOf(as[k].data));
      auto* b = req.add_inputs();
      b->set_name("b");
      b->set_datatype("FP32");
      b->add_shape(1);
      b->add_shape(4);
      req.add_raw_input_contents(bytesOf(bs[k].data));
      go.arrive_and_wait();
      st[k] = clients[k]->infer(req, &resp[k]);
    });
  for (auto& t : threads) t.join();
  for (int k = 0; k < n; ++k) {
    SCOPED_TRACE("request " + std::to_string(k));
    ASSERT_TRUE(st[k].ok()) << st[k].error_message();
    auto want = ref.run({as[k], bs[k]}, {"sum", "diff"});
    ASSERT_EQ(resp[k].raw_output_contents_size(), 2);
    EXPECT_TRUE(closeTo(floatsOf(resp[k].raw_output_contents(0)), want[0].data));
    EXPECT_TRUE(closeTo(floatsOf(resp[k].raw_output_contents(1)), want[1].data));
  }
  auto stats = Client(adminSocket()).statistics("pair");  // the device's figures, both slots
  uint64_t largest = 0;
  for (const auto& b : stats.batch_stats()) largest = std::max<uint64_t>(largest, b.batch_size());
  EXPECT_EQ(stats.inference_count(), static_cast<uint64_t>(n));
  EXPECT_LT(stats.execution_count(), static_cast<uint64_t>(n));
  EXPECT_GT(largest, 1u);
}

TEST_F(TorchAgentTest, MetadataGivesTheDeclaredSignatureAndHowItRuns) {
  prepare({"squeezenet"});
  startTorch();
  inference::ModelMetadataRequest req;
  req.set_name("squeezenet");
  inference::ModelMetadataResponse resp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(Client(socket(0)).stub().ModelMetadata(&ctx, req, &resp).ok());
  EXPECT_NE(resp.platform().find("torch: CPU (libtorch 1.13"), std::string::npos) << resp.platform();
  EXPECT_NE(resp.platform().find("fp32"), std::string::npos) << resp.platform();
  ASSERT_EQ(resp.inputs_size(), 1);
  EXPECT_EQ(resp.inputs(0).name(), "data");
  EXPECT_EQ(std::vector<int64_t>(resp.inputs(0).shape().begin(), resp.inputs(0).shape().end()),
            (std::vector<int64_t>{-1, 3, 224, 224}));
  ASSERT_EQ(resp.outputs_size(), 1);
  EXPECT_EQ(resp.outputs(0).name(), "logits");
}

}  // namespace
}  // namespace kubeaccel::testing
