// Field faults in the inference protocol (issue 9): requests that once
// crashed the agent, leaked another pod's data, or got the wrong answer. Each
// test sends the faulty request as a pod would, on the real agent, and checks
// the value that must come back.
#include "agent_fixture.hpp"
#include "metrics_scrape.hpp"

#include <condition_variable>
#include <latch>

namespace kubeaccel::testing {
namespace {

class AgentFaultTest : public AgentTest {
 protected:
  // Starts the agent with `slots` slots and waits for their sockets.
  void startWithSlots(int slots, const std::vector<std::string>& extraArgs = {}) {
    h.startAgent(h.writeConfig(agentConfig("opencv-cpu", slots)), extraArgs);
    ASSERT_TRUE(h.waitForAgentLog("serving " + std::to_string(slots) + " slot socket(s)")) << h.agentLog();
    ASSERT_NO_FATAL_FAILURE(id_ = deviceIdOf(kClass));
  }

  // With the agent started with --metrics-address 127.0.0.1:0: how many
  // requests for `model` the agent has taken on `slot`
  // (kubeaccel_agent_requests_received_total), waiting at most 30 s for `n`.
  // A call the agent has taken is queued or running; one it has not may
  // still be in gRPC's hands.
  double waitReceived(int slot, const std::string& model, double n) {
    const int port = metricsPortFromLog(h.agentLog());
    EXPECT_GT(port, 0) << "the agent serves no metrics:\n" << h.agentLog();
    const std::string series = R"(kubeaccel_agent_requests_received_total{resource="kubeaccel.io/)" + kClass +
                               R"(",slot=")" + id_ + "-s" + std::to_string(slot) + R"(",model=")" + model + R"("})";
    auto received = [&] { return sampleValue(httpGet(port, "/metrics"), series).value_or(0); };
    for (auto until = Clock::now() + 30s; Clock::now() < until; std::this_thread::sleep_for(10ms))
      if (received() >= n) break;
    return received();
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
  ASSERT_NO_FATAL_FAILURE(startWithSlots(3, {"--metrics-address", "127.0.0.1:0"}));
  Reference relu(modelFile("relu"), "x", "y");
  {
    Client warm(socket(0));
    warm.inferFloats("relu", "x", {1, 4}, randomFloats(4, 1));
    warm.inferFloats("squeezenet", "data", {1, 3, 224, 224}, randomFloats(kSqueezeRow, 1));
  }
  // Connected before the sends, which must keep their order within a slot.
  Client s0(socket(0)), s1(socket(1));
  Client* clients[] = {&s0, &s1};
  for (Client* cl : clients) cl->inferFloats("relu", "x", {1, 1}, {1.f});
  auto before = Client(adminSocket()).statistics("relu");  // the device's figures

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
  // The 19 MB request is the agent's (on a loaded machine its transfer took
  // longer than any fixed wait), then a moment for it to reach the worker.
  ASSERT_EQ(waitReceived(2, "squeezenet", 1), 1) << "the batch-32 request did not reach the agent";
  std::this_thread::sleep_for(150ms);
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
      inference::ModelInferResponse resp;
      status[i] = clients[sends[i].slot]->infer(inferRequest("relu", "x", sends[i].shape, bytesOf(inputs[i])), &resp,
                                                60s);
      if (resp.raw_output_contents_size()) replies[i] = floatsOf(resp.raw_output_contents(0));
      if (resp.outputs_size()) shapes[i].assign(resp.outputs(0).shape().begin(), resp.outputs(0).shape().end());
    });
    std::this_thread::sleep_for(5ms);  // keeps each slot's order
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
  auto after = Client(adminSocket()).statistics("relu");
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

namespace kubeaccel::testing {
namespace {

// Section 3: on ModelStreamInfer every answer carries its request's id, errors
// included, since answers come in completion order.
TEST_F(AgentFaultTest, StreamAnswersCarryTheRequestIdErrorsIncluded) {
  startAgent();
  Client c(socket(0));
  Reference tiny(modelFile("tiny"), "x", "y");
  auto x = randomFloats(4, 71);
  struct Sent {
    std::string id;
    inference::ModelInferRequest req;
    bool good;
  };
  std::vector<Sent> sent;
  auto add = [&](const std::string& id, inference::ModelInferRequest req, bool good) {
    req.set_id(id);
    sent.push_back({id, std::move(req), good});
  };
  add("good-1", inferRequest("tiny", "x", {1, 4}, bytesOf(x)), true);
  add("bad-shape", inferRequest("tiny", "x", {1, 5}, bytesOf(randomFloats(5, 1))), false);
  add("bad-model", inferRequest("nope", "x", {1, 4}, bytesOf(x)), false);
  add("good-2", inferRequest("squeezenet", "data", {1, 3, 224, 224}, bytesOf(randomFloats(kSqueezeRow, 2))), true);
  add("bad-datatype", inferRequest("tiny", "x", {1, 2}, bytesOf(x), "FP64"), false);
  add("bad-overflow", inferRequest("relu", "x", {3, 1537228672809129302}, std::string(8, '\0')), false);
  add("good-3", inferRequest("tiny", "x", {1, 4}, bytesOf(x)), true);

  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 30s);
  auto stream = c.stub().ModelStreamInfer(&ctx);
  for (const auto& s : sent) ASSERT_TRUE(stream->Write(s.req));
  stream->WritesDone();
  std::map<std::string, inference::ModelStreamInferResponse> got;
  inference::ModelStreamInferResponse r;
  while (stream->Read(&r)) {
    EXPECT_FALSE(r.infer_response().id().empty()) << "an answer without an id: " << r.error_message();
    EXPECT_EQ(got.count(r.infer_response().id()), 0u) << "two answers for " << r.infer_response().id();
    got[r.infer_response().id()] = r;
  }
  grpc::Status fin = stream->Finish();
  EXPECT_TRUE(fin.ok()) << fin.error_message();
  ASSERT_EQ(got.size(), sent.size());
  for (const auto& s : sent) {
    SCOPED_TRACE(s.id);
    ASSERT_EQ(got.count(s.id), 1u);
    const auto& a = got[s.id];
    EXPECT_EQ(a.error_message().empty(), s.good) << a.error_message();
    EXPECT_EQ(a.infer_response().model_name(), s.req.model_name());
    if (!s.good) std::cout << "[ agent    ] stream answer " << s.id << ": " << a.error_message() << "\n";
  }
  EXPECT_LE(maxAbsDiff(floatsOf(got["good-3"].infer_response().raw_output_contents(0)), tiny.run({1, 4}, x)),
            kTolerance);
}

// Section 4: requests cancelled while queued are dropped by the worker, not
// run, and never count as successes.
TEST_F(AgentFaultTest, CancelledQueuedRequestsAreNotRunNorCountedAsSuccesses) {
  // The metrics tell when the agent has taken the calls (waitReceived).
  startAgent({"--metrics-address", "127.0.0.1:0"});
  auto one = inferRequest("squeezenet", "data", {1, 3, 224, 224}, bytesOf(randomFloats(kSqueezeRow, 81)));
  {
    inference::ModelInferResponse resp;
    ASSERT_TRUE(Client(socket(1)).infer(one, &resp).ok());  // the worker's engine is made
  }
  auto before = Client(adminSocket()).statistics("squeezenet");  // the device's figures
  // Connected now, so that the calls to cancel reach the queue within the
  // wait below even on a loaded machine (no connection set-up then).
  Client c1(socket(1));
  {
    inference::ServerLiveResponse live;
    ASSERT_TRUE(c1.ServerLive({}, &live).ok());
  }
  // Batches of 32 keep the worker busy for seconds: 4 from slot 0, and 12 from slot 1
  // queued ahead of its small requests (the slots are served in turn).
  constexpr int kBusy = 16;
  auto big = inferRequest("squeezenet", "data", {32, 3, 224, 224}, bytesOf(randomFloats(32 * kSqueezeRow, 82)));
  std::vector<std::thread> busy;
  for (int i = 0; i < kBusy; ++i) {
    busy.emplace_back([&, slot = i < 4 ? 0 : 1] {
      inference::ModelInferResponse resp;
      grpc::Status s = Client(socket(slot)).infer(big, &resp, 60s);
      EXPECT_TRUE(s.ok()) << s.error_message();
    });
    std::this_thread::sleep_for(20ms);
  }
  // Slot 1's requests so far: the first one and its 12 batches.
  ASSERT_EQ(waitReceived(0, "squeezenet", 4), 4);
  ASSERT_EQ(waitReceived(1, "squeezenet", 13), 13);
  // Slot 1 queues 6 requests with no deadline, then cancels them.
  constexpr int kCancelled = 6;
  std::vector<std::unique_ptr<grpc::ClientContext>> ctxs;
  std::vector<grpc::Status> status(kCancelled);
  std::vector<std::thread> calls;
  for (int i = 0; i < kCancelled; ++i) ctxs.push_back(std::make_unique<grpc::ClientContext>());
  for (int i = 0; i < kCancelled; ++i)
    calls.emplace_back([&, i] {
      inference::ModelInferResponse resp;
      status[i] = c1.inferWith(ctxs[i].get(), one, &resp);
    });
  // Cancelled only once the agent has them all: a call cancelled before
  // gRPC handed it to the agent would never be the agent's to count. The
  // worker stays busy for seconds with the batches ahead, which the last
  // check below verifies.
  ASSERT_EQ(waitReceived(1, "squeezenet", 13 + kCancelled), 13 + kCancelled);
  for (auto& ctx : ctxs) ctx->TryCancel();
  for (auto& t : calls) t.join();
  for (auto& t : busy) t.join();
  int okAmongCancelled = 0;
  for (const auto& s : status) okAmongCancelled += s.ok();
  // A request after them waits for nothing they would have run.
  auto t0 = Clock::now();
  inference::ModelInferResponse resp;
  ASSERT_TRUE(c1.infer(one, &resp).ok());
  auto later = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
  // The agent records after it answers, on another thread: wait (at most 10 s)
  // for the figures to account for every call before judging them.
  inference::ModelStatistics after;
  uint64_t success = 0, rows = 0, failed = 0;
  for (auto until = Clock::now() + 10s; Clock::now() < until; std::this_thread::sleep_for(50ms)) {
    after = Client(adminSocket()).statistics("squeezenet");
    success = after.inference_stats().success().count() - before.inference_stats().success().count();
    rows = after.inference_count() - before.inference_count();
    failed = after.inference_stats().fail().count() - before.inference_stats().fail().count();
    if (success + failed >= kBusy + 1u + kCancelled) break;
  }
  std::cout << "[ agent    ] " << kCancelled << " cancelled while queued (" << okAmongCancelled
            << " answered before the cancel): success +" << success << ", rows +" << rows << ", fail +" << failed
            << "; the next request took " << later.count() << " ms\n";
  EXPECT_EQ(success, kBusy + 1u + okAmongCancelled) << "cancelled requests were counted as successes";
  EXPECT_EQ(rows, kBusy * 32u + 1u + okAmongCancelled) << "cancelled requests were run";
  EXPECT_EQ(failed, static_cast<uint64_t>(kCancelled - okAmongCancelled))
      << "each cancelled call the worker dropped counts as a failure";
  EXPECT_LE(okAmongCancelled, 1) << "the worker was not busy: the test proves nothing";
}

// Section 5: SIGTERM with 100 SqueezeNet batch-32 requests queued. The agent
// exits within a bound well under Kubernetes' 30 s grace; requests still
// queued after the grace are answered UNAVAILABLE; no call is left hanging.
TEST_F(AgentFaultTest, SigtermWithAFullQueueExitsWithinTheGrace) {
  // 100 requests of 19 MB: past the default --max-inflight-bytes, which
  // this test is not about.
  startAgent({"--max-inflight-bytes", "4294967296"});
  auto req = inferRequest("squeezenet", "data", {32, 3, 224, 224}, bytesOf(randomFloats(32 * kSqueezeRow, 91)));
  constexpr int kQueued = 100;
  std::vector<std::unique_ptr<Client>> clients;
  for (int k : {0, 1}) clients.push_back(std::make_unique<Client>(socket(k)));
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, int> ended;
  int done = 0;
  std::vector<std::unique_ptr<grpc::ClientContext>> ctxs;
  std::vector<std::unique_ptr<inference::ModelInferResponse>> resps;
  for (int i = 0; i < kQueued; ++i) {
    ctxs.push_back(std::make_unique<grpc::ClientContext>());
    resps.push_back(std::make_unique<inference::ModelInferResponse>());
    clients[i % 2]->stub().async()->ModelInfer(ctxs.back().get(), &req, resps.back().get(), [&](grpc::Status s) {
      std::lock_guard lock(mu);
      std::string key = codeName(s.error_code());
      if (s.error_code() == grpc::StatusCode::UNAVAILABLE) key += " (" + s.error_message() + ")";
      ++ended[key];
      ++done;
      cv.notify_all();
    });
  }
  // Every request is in the agent once the first answer is back (the first
  // run takes longer than sending 100 requests over a Unix socket) .
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 60s, [&] { return done > 0; })) << "no answer at all";
  }
  std::this_thread::sleep_for(1s);
  auto t0 = Clock::now();
  EXPECT_EQ(h.stopAgent(SIGTERM), 0);
  auto exited = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
  std::unique_lock lock(mu);
  bool all = cv.wait_for(lock, 10s, [&] { return done == kQueued; });
  auto answered = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
  std::string summary;
  for (const auto& [k, n] : ended) summary += (summary.empty() ? "" : ", ") + std::to_string(n) + " " + k;
  std::cout << "[ agent    ] SIGTERM with " << kQueued << " SqueezeNet batch-32 requests in the agent: exited after "
            << exited.count() << " ms, every call ended within " << answered.count() << " ms: " << summary << "\n";
  EXPECT_TRUE(all) << done << " of " << kQueued << " calls ended";
  EXPECT_LT(exited, 8s) << "the agent waited for its queue";
  // Queued requests get UNAVAILABLE from the drain. Under a loaded machine a
  // few requests may still be on their way when the signal comes: gRPC then
  // refuses them (UNAVAILABLE, GOAWAY) or cancels them (CANCELLED) as it
  // stops; either way they end. Nothing else is an acceptable answer.
  int drained = 0;
  for (const auto& [k, n] : ended) {
    EXPECT_TRUE(k == "OK" || k == "CANCELLED" || k.rfind("UNAVAILABLE", 0) == 0) << k;
    if (k.find("the agent is shutting down") != std::string::npos) drained += n;
  }
  EXPECT_GE(drained, kQueued / 4) << "queued requests were not answered UNAVAILABLE by the drain: " << summary;
  lock.unlock();
  // Each call's context must outlive its callback.
  lock.lock();
  cv.wait_for(lock, 10s, [&] { return done == kQueued; });
}

}  // namespace
}  // namespace kubeaccel::testing

namespace kubeaccel::testing {
namespace {

// A file in slot `k`'s directory holding `bytes`, registered as region `name`.
void shmRegion(Client& c, const std::string& dir, const std::string& name, const std::string& bytes) {
  std::ofstream(dir + "/" + name + ".shm", std::ios::binary) << bytes;
  grpc::Status s = c.registerRegion(name, name + ".shm", 0, bytes.size());
  ASSERT_TRUE(s.ok()) << s.error_message();
}

void setShm(inference::ModelInferRequest::InferInputTensor* in, const std::string& region, int64_t offset,
            int64_t size) {
  (*in->mutable_parameters())["shared_memory_region"].set_string_param(region);
  (*in->mutable_parameters())["shared_memory_offset"].set_int64_param(offset);
  (*in->mutable_parameters())["shared_memory_byte_size"].set_int64_param(size);
}

// Section 9: tritonclient.grpc sends raw_input_contents only for the inputs
// not in shared memory, in their order. The pair model (a, b -> sum, diff)
// gets one input from a region and the other raw, both ways round; the
// outputs equal OpenCV's in-process results.
TEST_F(AgentFaultTest, StockClientSharedMemoryLayoutIsAccepted) {
  startAgent();
  Client c(socket(0));
  auto a = randomFloats(8, 101), b = randomFloats(8, 102);
  ASSERT_NO_FATAL_FAILURE(shmRegion(c, shmDir(0), "ina", bytesOf(a)));
  ASSERT_NO_FATAL_FAILURE(shmRegion(c, shmDir(0), "inb", bytesOf(b)));
  std::vector<float> sum(8), diff(8);
  for (int i = 0; i < 8; ++i) sum[i] = a[i] + b[i], diff[i] = a[i] - b[i];
  for (bool aInShm : {true, false}) {
    SCOPED_TRACE(aInShm ? "a in shared memory, b raw" : "a raw, b in shared memory");
    inference::ModelInferRequest req;
    req.set_model_name("pair");
    for (const char* name : {"a", "b"}) {
      auto* in = req.add_inputs();
      in->set_name(name);
      in->set_datatype("FP32");
      in->add_shape(2);
      in->add_shape(4);
    }
    if (aInShm) {
      setShm(req.mutable_inputs(0), "ina", 0, 32);
      req.add_raw_input_contents(bytesOf(b));
    } else {
      req.add_raw_input_contents(bytesOf(a));
      setShm(req.mutable_inputs(1), "inb", 0, 32);
    }
    inference::ModelInferResponse resp;
    grpc::Status s = c.infer(req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    ASSERT_EQ(resp.outputs_size(), 2);
    ASSERT_EQ(resp.raw_output_contents_size(), 2);
    for (int o = 0; o < 2; ++o) {
      const auto& want = resp.outputs(o).name() == "sum" ? sum : diff;
      EXPECT_LE(maxAbsDiff(floatsOf(resp.raw_output_contents(o)), want), kTolerance) << resp.outputs(o).name();
    }
    // One raw entry per input, as this agent used to demand, is a miscount now.
    req.add_raw_input_contents(bytesOf(aInShm ? a : b));
    s = c.infer(req, &resp);
    EXPECT_EQ(codeName(s.error_code()), "INVALID_ARGUMENT");
    EXPECT_NE(s.error_message().find("expected one per input not in shared memory (1: "), std::string::npos)
        << s.error_message();
  }
}

// Section 8: typed contents on an input whose data is raw (or in shared
// memory) are refused, not silently ignored.
TEST_F(AgentFaultTest, RawAndTypedContentsOnOneInputAreRefused) {
  startAgent();
  Client c(socket(0));
  auto x = randomFloats(4, 111);
  auto req = inferRequest("tiny", "x", {1, 4}, bytesOf(x));
  for (float v : x) req.mutable_inputs(0)->mutable_contents()->add_fp32_contents(v + 1);
  inference::ModelInferResponse resp;
  grpc::Status s = c.infer(req, &resp);
  EXPECT_EQ(codeName(s.error_code()), "INVALID_ARGUMENT");
  EXPECT_NE(s.error_message().find("input 'x': typed contents must not be set when raw_input_contents is used"),
            std::string::npos)
      << s.error_message();

  ASSERT_NO_FATAL_FAILURE(shmRegion(c, shmDir(0), "inx", bytesOf(x)));
  inference::ModelInferRequest shmReq;
  shmReq.set_model_name("tiny");
  auto* in = shmReq.add_inputs();
  in->set_name("x");
  in->set_datatype("FP32");
  in->add_shape(1);
  in->add_shape(4);
  setShm(in, "inx", 0, 16);
  in->mutable_contents()->add_fp32_contents(1);
  s = c.infer(shmReq, &resp);
  EXPECT_EQ(codeName(s.error_code()), "INVALID_ARGUMENT");
  EXPECT_NE(s.error_message().find("input 'x': typed contents must not be set with a shared_memory_region"),
            std::string::npos)
      << s.error_message();
}

}  // namespace
}  // namespace kubeaccel::testing

namespace kubeaccel::testing {
namespace {

// Section 10: ServerReady is true when the slot can serve an inference: the
// backend is built in and at least one model is served.
class ServerReadyTest : public AgentFaultTest {
 protected:
  bool serverReady() {
    inference::ServerReadyResponse resp;
    grpc::Status s = Client(socket(0)).ServerReady({}, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.ready();
  }
  void breakModel(const std::string& name) {
    std::ofstream(h.modelsDir() + "/" + name + "/1/model.onnx", std::ios::trunc) << "not ONNX";
  }
};

TEST_F(ServerReadyTest, OneBrokenModelAmongGoodOnesIsReady) {
  breakModel("relu");
  startAgent();
  EXPECT_EQ(Client(socket(0)).index()["relu"].state(), "UNAVAILABLE");
  EXPECT_TRUE(serverReady());
}

TEST_F(ServerReadyTest, OnlyBrokenModelsIsNotReadyUntilOneLoads) {
  const std::string tiny = slurp(modelFile("tiny"));
  ASSERT_FALSE(tiny.empty());
  for (const char* m : {"squeezenet", "tiny", "relu", "pair", "loose"}) breakModel(m);
  startAgent();
  EXPECT_FALSE(serverReady());
  // Fixed and loaded (through the admin socket): ready.
  std::ofstream(modelFile("tiny"), std::ios::trunc | std::ios::binary) << tiny;
  Client c1(adminSocket());
  inference::RepositoryModelLoadRequest load;
  load.set_model_name("tiny");
  inference::RepositoryModelLoadResponse loadResp;
  grpc::Status s = c1.RepositoryModelLoad(load, &loadResp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(serverReady());
  // Unloaded again: not ready.
  inference::RepositoryModelUnloadRequest unload;
  unload.set_model_name("tiny");
  inference::RepositoryModelUnloadResponse unloadResp;
  ASSERT_TRUE(c1.RepositoryModelUnload(unload, &unloadResp).ok());
  EXPECT_FALSE(serverReady());
}

TEST_F(ServerReadyTest, NoModelsIsNotReady) {
  for (const auto& e : fs::directory_iterator(h.modelsDir())) fs::remove_all(e.path());
  startAgent();
  EXPECT_FALSE(serverReady());
  EXPECT_TRUE(Client(socket(0)).index().empty());
}

}  // namespace
}  // namespace kubeaccel::testing

namespace kubeaccel::testing {
namespace {

// Section 6: statistics count only what happened.
TEST_F(AgentFaultTest, StatisticsCountOnlyWhatHappened) {
  startAgent({"--max-message-bytes", "1048576"});
  Client c(socket(0));
  // An engine failure: 'loose' declares its input [N,M] but multiplies by a
  // [4,3] matrix, so width 5 passes the checks and fails in OpenCV.
  {
    auto before = c.statistics("loose");
    inference::ModelInferResponse resp;
    grpc::Status s = c.infer(inferRequest("loose", "x", {1, 5}, bytesOf(randomFloats(5, 1))), &resp);
    EXPECT_EQ(codeName(s.error_code()), "INTERNAL") << s.error_message();
    auto after = c.statistics("loose");
    EXPECT_EQ(after.execution_count(), before.execution_count()) << "a failed run counted as an execution";
    EXPECT_EQ(after.batch_stats_size(), before.batch_stats_size()) << "a failed run counted as a batch";
    EXPECT_EQ(after.inference_stats().compute_infer().count(), before.inference_stats().compute_infer().count());
    EXPECT_EQ(after.inference_stats().fail().count(), before.inference_stats().fail().count() + 1);
    EXPECT_EQ(after.inference_stats().success().count(), before.inference_stats().success().count());
  }
  // An answer over --max-message-bytes (1 MiB): the input comes through
  // shared memory, the 1.28 MB output would come back in the message.
  {
    auto x = randomFloats(8 * 40000, 2);
    std::ofstream(shmDir(0) + "/big.shm", std::ios::binary) << bytesOf(x);
    grpc::Status reg = c.registerRegion("big", "big.shm", 0, x.size() * 4);
    ASSERT_TRUE(reg.ok()) << reg.error_message();
    inference::ModelInferRequest req;
    req.set_model_name("relu");
    auto* in = req.add_inputs();
    in->set_name("x");
    in->set_datatype("FP32");
    in->add_shape(8);
    in->add_shape(40000);
    (*in->mutable_parameters())["shared_memory_region"].set_string_param("big");
    auto before = c.statistics("relu");
    inference::ModelInferResponse resp;
    grpc::Status s = c.infer(req, &resp);
    EXPECT_EQ(codeName(s.error_code()), "RESOURCE_EXHAUSTED") << s.error_message();
    EXPECT_NE(s.error_message().find("--max-message-bytes"), std::string::npos) << s.error_message();
    auto after = c.statistics("relu");
    EXPECT_EQ(after.inference_stats().success().count(), before.inference_stats().success().count())
        << "an answer that could not be sent counted as a success";
    EXPECT_EQ(after.inference_stats().fail().count(), before.inference_stats().fail().count() + 1);
  }
  // A version that does not exist.
  {
    inference::ModelStatisticsRequest req;
    req.set_name("tiny");
    req.set_version("7");
    inference::ModelStatisticsResponse resp;
    grpc::Status s = c.ModelStatistics(req, &resp);
    EXPECT_EQ(codeName(s.error_code()), "NOT_FOUND") << s.error_message();
    EXPECT_NE(s.error_message().find("7"), std::string::npos) << s.error_message();
    req.set_version("1");
    EXPECT_TRUE(c.ModelStatistics(req, &resp).ok());
  }
}

// Section 6: an answer its client abandoned during the run (its deadline
// passed while the engine ran) is not a success.
TEST_F(AgentFaultTest, AbandonedAnswerIsNotASuccess) {
  startAgent();
  Client c(socket(0));
  auto big = inferRequest("squeezenet", "data", {32, 3, 224, 224}, bytesOf(randomFloats(32 * kSqueezeRow, 3)));
  inference::ModelInferResponse resp;
  ASSERT_TRUE(c.infer(big, &resp, 60s).ok());  // warm; and how long one takes
  auto t0 = Clock::now();
  ASSERT_TRUE(c.infer(big, &resp, 60s).ok());
  auto whole = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
  auto before = c.statistics("squeezenet");
  grpc::Status s = c.infer(big, &resp, whole / 2);
  EXPECT_EQ(codeName(s.error_code()), "DEADLINE_EXCEEDED") << s.error_message();
  std::this_thread::sleep_for(whole + 200ms);  // the run ends and is recorded
  auto after = c.statistics("squeezenet");
  std::cout << "[ agent    ] batch 32 takes " << whole.count() << " ms; abandoned at " << (whole / 2).count()
            << " ms: success +" << after.inference_stats().success().count() - before.inference_stats().success().count()
            << ", fail +" << after.inference_stats().fail().count() - before.inference_stats().fail().count() << "\n";
  EXPECT_EQ(after.inference_stats().success().count(), before.inference_stats().success().count())
      << "an abandoned answer counted as a success";
  EXPECT_EQ(after.inference_stats().fail().count(), before.inference_stats().fail().count() + 1);
}

// Section 7: RepositoryModelLoad of a name outside the safe set is refused
// and leaves the index as it was.
TEST_F(AgentFaultTest, UnsafeModelNamesAreRefusedAndAddNothing) {
  startAgent();
  Client c(socket(0));
  Client admin(adminSocket());  // loads are an admin operation (issue 10)
  auto names = [&] {
    std::vector<std::string> out;
    for (const auto& [n, _] : c.index()) out.push_back(n);
    return out;
  };
  const auto before = names();
  fs::create_directories(h.modelsDir() + "/.hidden/1");
  std::vector<std::string> bad = {std::string("tiny\0x", 6), std::string("tiny\0", 5), "../tiny", "tiny/",
                                  "tiny/../tiny", ".hidden", ".", "..", "", "tiny\n", std::string(256, 'a'),
                                  "t\xc3\xa9"};
  for (int i = 0; i < 100; ++i) bad.push_back(std::string("tiny\0", 5) + std::to_string(i));
  for (const auto& name : bad) {
    inference::RepositoryModelLoadRequest req;
    req.set_model_name(name);
    inference::RepositoryModelLoadResponse resp;
    grpc::Status s = admin.RepositoryModelLoad(req, &resp);
    EXPECT_EQ(codeName(s.error_code()), "INVALID_ARGUMENT") << "'" << name << "': " << s.error_message();
    EXPECT_NE(s.error_message().find("model name"), std::string::npos) << s.error_message();
  }
  EXPECT_EQ(names(), before) << "a refused load changed the index";
  // A good name still loads.
  inference::RepositoryModelLoadRequest req;
  req.set_model_name("tiny");
  inference::RepositoryModelLoadResponse resp;
  EXPECT_TRUE(admin.RepositoryModelLoad(req, &resp).ok());
}

// Section 11: an empty or whitespace-only config.json means the defaults.
TEST_F(AgentFaultTest, EmptyConfigJsonMeansTheDefaults) {
  std::ofstream(h.modelsDir() + "/tiny/config.json", std::ios::trunc) << "";
  std::ofstream(h.modelsDir() + "/relu/config.json", std::ios::trunc) << " \n\t\r\n";
  startAgent();
  Client c(socket(0));
  auto idx = c.index();
  EXPECT_EQ(idx["tiny"].state(), "READY") << idx["tiny"].reason();
  EXPECT_EQ(idx["relu"].state(), "READY") << idx["relu"].reason();
  // Defaults: max_batch_size 0, so shapes are the graph's own ([N,4]: any N).
  Reference tiny(modelFile("tiny"), "x", "y");
  auto x = randomFloats(8, 4);
  EXPECT_LE(maxAbsDiff(c.inferFloats("tiny", "x", {2, 4}, x), tiny.run({2, 4}, x)), kTolerance);
}

// Section 11: an output whose shared-memory file was truncated is lost; the
// request fails instead of answering OK.
TEST_F(AgentFaultTest, TruncatedSharedMemoryOutputFailsTheRequest) {
  startAgent();
  Client c(socket(0));
  std::ofstream(shmDir(0) + "/out.shm", std::ios::binary) << std::string(4096, '\0');
  ASSERT_TRUE(c.registerRegion("out", "out.shm", 0, 4096).ok());
  ASSERT_EQ(::truncate((shmDir(0) + "/out.shm").c_str(), 0), 0);
  auto req = inferRequest("tiny", "x", {1, 4}, bytesOf(randomFloats(4, 5)));
  auto* o = req.add_outputs();
  o->set_name("y");
  (*o->mutable_parameters())["shared_memory_region"].set_string_param("out");
  (*o->mutable_parameters())["shared_memory_byte_size"].set_int64_param(12);
  inference::ModelInferResponse resp;
  grpc::Status s = c.infer(req, &resp);
  EXPECT_EQ(codeName(s.error_code()), "FAILED_PRECONDITION") << s.error_message();
  EXPECT_NE(s.error_message().find("output 'y'"), std::string::npos) << s.error_message();
  // The agent lives on and serves.
  Reference tiny(modelFile("tiny"), "x", "y");
  auto x = randomFloats(4, 6);
  EXPECT_LE(maxAbsDiff(c.inferFloats("tiny", "x", {1, 4}, x), tiny.run({1, 4}, x)), kTolerance);
}

}  // namespace
}  // namespace kubeaccel::testing
