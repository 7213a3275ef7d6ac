// Field faults in the inference protocol (issue 9): requests that once
// crashed the agent, leaked another pod's data, or got the wrong answer. Each
// test sends the faulty request as a pod would, on the real agent, and checks
// the value that must come back.
#include "agent_fixture.hpp"

#include <latch>

namespace kubeaccel::testing {
namespace {

// The NCS2 class with `slots` slots on opencv-cpu.
std::string configWithSlots(int slots) {
  return R"({"classes": [{"name": "movidius-ncs2", "mode": "agent", "backend": "opencv-cpu", "slots": )" +
         std::to_string(slots) +
         R"(, "reenumerates": true, "match": [{"subsystem": "usb", "vendor": "03e7", "product": "2485"},)"
         R"( {"subsystem": "usb", "vendor": "03e7", "product": "f63b"}]}]})";
}

class AgentFaultTest : public AgentTest {
 protected:
  // Starts the agent with `slots` slots and waits for their sockets.
  void startWithSlots(int slots, const std::vector<std::string>& extraArgs = {}) {
    h.startAgent(h.writeConfig(configWithSlots(slots)), extraArgs);
    ASSERT_TRUE(h.waitForAgentLog("serving " + std::to_string(slots) + " slot socket(s)")) << h.agentLog();
    ASSERT_NO_FATAL_FAILURE(id_ = deviceIdOf(kClass));
  }
};

// (element count x 4) of each shape wraps around 2^64 to the byte count sent,
// so an unchecked multiplication takes a few bytes for a tensor of 2^62
// elements. Also: dims that do not fit the engine's int, int64 overflow of
// the element count, and a zero dim.
struct OverflowCase {
  std::vector<int64_t> shape;
  size_t bytes;
};
std::vector<OverflowCase> overflowingShapes() {
  std::vector<OverflowCase> out;
  out.push_back({{3, 1537228672809129302}, 8});  // issue 9, section 1: 3 * n * 4 = 2^64 + 8
  for (int64_t rows : {1, 2, 4, 8})
    for (int64_t k = 0; k <= 8; ++k)  // rows * (2^62/rows + k) * 4 = 2^64 + 4 * rows * k
      out.push_back({{rows, (int64_t{1} << 62) / rows + k}, static_cast<size_t>(4 * rows * k)});
  out.push_back({{1, int64_t{1} << 31}, 0});
  out.push_back({{1, (int64_t{1} << 32) + 1}, 4});
  out.push_back({{1, INT64_MAX}, 4});
  out.push_back({{8, INT64_MAX / 4 + 1}, 4});
  out.push_back({{2, (int64_t{1} << 62) + 1}, 8});
  out.push_back({{1, 0}, 0});
  out.push_back({{1, 4611686018427387905}, 4});  // section 11: came back OK as [1,1]
  return out;
}

// Section 1 and 11: every wrong-size request is refused, naming the tensor,
// and the agent keeps serving every slot.
TEST_F(AgentFaultTest, OverflowingShapesAreRefusedNamingTheTensor) {
  startAgent();
  Client c(socket(0));
  auto cases = overflowingShapes();
  int refused = 0;
  for (const auto& k : cases) {
    std::vector<float> data(k.bytes / 4, 1.f);
    inference::ModelInferResponse resp;
    grpc::Status s = c.infer(inferRequest("relu", "x", k.shape, bytesOf(data)), &resp);
    std::string shape;
    for (auto d : k.shape) shape += (shape.empty() ? "" : ",") + std::to_string(d);
    EXPECT_EQ(codeName(s.error_code()), "INVALID_ARGUMENT") << "[" << shape << "] with " << k.bytes << " bytes";
    EXPECT_NE(s.error_message().find("input 'x'"), std::string::npos) << s.error_message();
    refused += s.error_code() == grpc::StatusCode::INVALID_ARGUMENT;
    inference::ServerLiveResponse live;
    ASSERT_TRUE(c.ServerLive({}, &live).ok()) << "the agent died on [" << shape << "]";
  }
  std::cout << "[ agent    ] " << refused << " of " << cases.size() << " overflowing shapes refused; e.g. "
            << [&] {
                 inference::ModelInferResponse r;
                 return c.infer(inferRequest("relu", "x", {3, 1537228672809129302}, std::string(8, '\0')), &r)
                     .error_message();
               }()
            << "\n";
  EXPECT_EQ(refused, static_cast<int>(cases.size()));

  // Still serving, on both slots, with the right values.
  Reference relu(modelFile("relu"), "x", "y");
  auto x = randomFloats(2 * 5, 3);
  for (int slot : {0, 1})
    EXPECT_LE(maxAbsDiff(Client(socket(slot)).inferFloats("relu", "x", {2, 5}, x), relu.run({2, 5}, x)), kTolerance);
}

// Section 2: requests of different widths for a model with a free dim queue
// together from different slots; each reply is its own input's result, and
// requests of equal shapes are still batched.
TEST_F(AgentFaultTest, DynamicBatchingJoinsOnlyEqualShapes) {
  ASSERT_NO_FATAL_FAILURE(startWithSlots(3));
  Reference relu(modelFile("relu"), "x", "y");
  {
    Client warm(socket(0));
    warm.inferFloats("relu", "x", {1, 4}, randomFloats(4, 1));
    warm.inferFloats("squeezenet", "data", {1, 3, 224, 224}, randomFloats(kSqueezeRow, 1));
  }
  auto before = Client(socket(0)).statistics("relu");

  // Slot 2 keeps the one worker busy with SqueezeNet batch 32; meanwhile
  // slots 0 and 1 queue relu requests of mixed widths, in this order.
  struct Send {
    int slot;
    std::vector<int64_t> shape;
  };
  const std::vector<Send> sends = {{0, {1, 4000}}, {1, {1, 4}},    {0, {1, 4}},    {1, {1, 4000}},
                                   {0, {2, 7}},    {1, {1, 7}},    {0, {1, 4000}}, {1, {3, 4}}};
  std::thread busy([&] {
    Client c(socket(2));
    inference::ModelInferResponse resp;
    grpc::Status s = c.infer(inferRequest("squeezenet", "data", {32, 3, 224, 224},
                                          bytesOf(randomFloats(32 * kSqueezeRow, 2))),
                             &resp, 60s);
    EXPECT_TRUE(s.ok()) << s.error_message();
  });
  std::this_thread::sleep_for(300ms);  // the 19 MB request reaches the worker
  std::vector<std::vector<float>> inputs, replies(sends.size());
  std::vector<std::vector<int64_t>> shapes(sends.size());
  std::vector<grpc::Status> status(sends.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < sends.size(); ++i) {
    size_t n = 1;
    for (auto d : sends[i].shape) n *= static_cast<size_t>(d);
    inputs.push_back(randomFloats(n, 500 + static_cast<unsigned>(i)));
  }
  for (size_t i = 0; i < sends.size(); ++i) {
    threads.emplace_back([&, i] {
      Client c(socket(sends[i].slot));
      inference::ModelInferResponse resp;
      status[i] = c.infer(inferRequest("relu", "x", sends[i].shape, bytesOf(inputs[i])), &resp, 60s);
      if (resp.raw_output_contents_size()) replies[i] = floatsOf(resp.raw_output_contents(0));
      if (resp.outputs_size()) shapes[i].assign(resp.outputs(0).shape().begin(), resp.outputs(0).shape().end());
    });
    std::this_thread::sleep_for(15ms);  // keeps each slot's order
  }
  for (auto& t : threads) t.join();
  busy.join();
  for (size_t i = 0; i < sends.size(); ++i) {
    SCOPED_TRACE("request " + std::to_string(i) + " from s" + std::to_string(sends[i].slot));
    ASSERT_TRUE(status[i].ok()) << status[i].error_message();
    EXPECT_EQ(shapes[i], sends[i].shape) << "the reply does not have its own request's shape";
    std::vector<int> shape(sends[i].shape.begin(), sends[i].shape.end());
    EXPECT_LE(maxAbsDiff(replies[i], relu.run(shape, inputs[i])), kTolerance)
        << "got " << replies[i].size() << " values for " << inputs[i].size() << " inputs";
  }
  auto after = Client(socket(0)).statistics("relu");
  std::string batches;
  for (const auto& b : after.batch_stats()) {
    uint64_t runs = b.compute_infer().count();
    for (const auto& o : before.batch_stats())
      if (o.batch_size() == b.batch_size()) runs -= o.compute_infer().count();
    batches += " " + std::to_string(b.batch_size()) + "x" + std::to_string(runs);
  }
  std::cout << "[ agent    ] relu, mixed widths from 2 slots: " << after.execution_count() - before.execution_count()
            << " runs for " << sends.size() << " requests; batches (rows x runs):" << batches << "\n";
  EXPECT_LT(after.execution_count() - before.execution_count(), sends.size())
      << "requests of equal shapes were not batched any more";
}

}  // namespace
}  // namespace kubeaccel::testing
