// The real kubeaccel-agent on a umockdev testbed, spoken to as a pod would:
// KServe v2 over gRPC on its slot sockets. Outputs are checked against OpenCV
// DNN run in this process on the same model file and the same input.
#include "agent_fixture.hpp"

#include <latch>
#include <set>

namespace kubeaccel::testing {
namespace {

// ---------------------------------------------------------------------------

TEST_F(AgentTest, InferenceEqualsOpenCvInProcessForSqueezeNetAndTiny) {
  startAgent();
  Reference squeeze(modelFile("squeezenet"), "data", "prob");
  Reference tiny(modelFile("tiny"), "x", "y");

  for (int slot : {0, 1}) {
    SCOPED_TRACE("slot s" + std::to_string(slot));
    Client c(socket(slot));
    // SqueezeNet, one image.
    auto img = randomFloats(kSqueezeRow, 100 + slot);
    inference::ModelInferResponse resp;
    auto got = c.inferFloats("squeezenet", "data", {1, 3, 224, 224}, img, &resp);
    auto want = squeeze.run({1, 3, 224, 224}, img);
    ASSERT_EQ(want.size(), 1000u);
    ASSERT_EQ(got.size(), want.size());
    EXPECT_LE(maxAbsDiff(got, want), kTolerance);
    ASSERT_EQ(resp.outputs_size(), 1);
    EXPECT_EQ(resp.model_name(), "squeezenet");
    EXPECT_EQ(resp.outputs(0).name(), "prob");
    EXPECT_EQ(resp.outputs(0).datatype(), "FP32");
    EXPECT_EQ(std::vector<int64_t>(resp.outputs(0).shape().begin(), resp.outputs(0).shape().end()),
              (std::vector<int64_t>{1, 1000}));
    // A real softmax, not zeros: sums to 1.
    double sum = 0;
    for (float v : got) sum += v;
    EXPECT_NEAR(sum, 1.0, 1e-3);

    // tiny, one row.
    auto x = randomFloats(4, 200 + slot);
    got = c.inferFloats("tiny", "x", {1, 4}, x, &resp);
    want = tiny.run({1, 4}, x);
    ASSERT_EQ(want.size(), 3u);
    EXPECT_LE(maxAbsDiff(got, want), kTolerance);
    ASSERT_EQ(resp.outputs_size(), 1);
    EXPECT_EQ(resp.outputs(0).name(), "y");
    EXPECT_EQ(std::vector<int64_t>(resp.outputs(0).shape().begin(), resp.outputs(0).shape().end()),
              (std::vector<int64_t>{1, 3}));
  }

  Client c(socket(0));
  {
    // Typed contents (fp32_contents) instead of raw bytes: the same result.
    auto x = randomFloats(8, 300);
    inference::ModelInferRequest req;
    req.set_model_name("tiny");
    auto* in = req.add_inputs();
    in->set_name("x");
    in->set_datatype("FP32");
    in->add_shape(2);
    in->add_shape(4);
    for (float v : x) in->mutable_contents()->add_fp32_contents(v);
    inference::ModelInferResponse resp;
    grpc::Status s = c.infer(req, &resp);
    ASSERT_TRUE(s.ok()) << codeName(s.error_code()) << " " << s.error_message();
    ASSERT_EQ(resp.raw_output_contents_size(), 1);
    EXPECT_LE(maxAbsDiff(floatsOf(resp.raw_output_contents(0)), tiny.run({2, 4}, x)), kTolerance);
  }
  // tiny, batch 4: each row equals that row inferred alone (and the reference's batch).
  auto x4 = randomFloats(16, 7);
  auto got4 = c.inferFloats("tiny", "x", {4, 4}, x4);
  ASSERT_EQ(got4.size(), 12u);
  EXPECT_LE(maxAbsDiff(got4, tiny.run({4, 4}, x4)), kTolerance);
  bool someNonZero = false;
  for (int r = 0; r < 4; ++r) {
    std::vector<float> row(x4.begin() + 4 * r, x4.begin() + 4 * r + 4);
    auto single = c.inferFloats("tiny", "x", {1, 4}, row);
    ASSERT_EQ(single.size(), 3u);
    EXPECT_LE(maxAbsDiff(got4.data() + 3 * r, single.data(), 3), kTolerance) << "row " << r;
    for (float v : single) someNonZero |= v != 0.f;
  }
  EXPECT_TRUE(someNonZero) << "tiny gave only zeros for 4 random rows";

  // SqueezeNet, batch 2: each image equals that image inferred alone.
  auto img2 = randomFloats(2 * kSqueezeRow, 9);
  auto got2 = c.inferFloats("squeezenet", "data", {2, 3, 224, 224}, img2);
  ASSERT_EQ(got2.size(), 2000u);
  for (int r = 0; r < 2; ++r) {
    std::vector<float> one(img2.begin() + r * kSqueezeRow, img2.begin() + (r + 1) * kSqueezeRow);
    auto single = c.inferFloats("squeezenet", "data", {1, 3, 224, 224}, one);
    ASSERT_EQ(single.size(), 1000u);
    EXPECT_LE(maxAbsDiff(got2.data() + 1000 * r, single.data(), 1000), kTolerance) << "image " << r;
    EXPECT_LE(maxAbsDiff(got2.data() + 1000 * r, squeeze.run({1, 3, 224, 224}, one).data(), 1000), kTolerance)
        << "image " << r;
  }
}

// Inputs and outputs through a file in the slot directory give the raw path's outputs.
TEST_F(AgentTest, SharedMemoryGivesTheSameOutputsAsRaw) {
  startAgent();
  Client c(socket(1));
  struct Case {
    std::string model, input, output;
    std::vector<int64_t> shape;
    size_t outFloats;
  };
  for (const Case& k : {Case{"squeezenet", "data", "prob", {1, 3, 224, 224}, 1000}, Case{"tiny", "x", "y", {4, 4}, 12}}) {
    SCOPED_TRACE(k.model);
    size_t inFloats = 1;
    for (auto d : k.shape) inFloats *= static_cast<size_t>(d);
    auto data = randomFloats(inFloats, 31);
    auto raw = c.inferFloats(k.model, k.input, k.shape, data);
    ASSERT_EQ(raw.size(), k.outFloats);

    // Layout: 100 bytes of padding, the input, then the output.
    const size_t inOff = 100, inBytes = inFloats * 4, outOff = inOff + inBytes, outBytes = k.outFloats * 4;
    const std::string key = "region-" + k.model + ".bin";
    const std::string file = shmDir(1) + "/" + key;
    {
      std::string contents(outOff + outBytes, '\xee');
      std::memcpy(contents.data() + inOff, data.data(), inBytes);
      std::ofstream(file, std::ios::binary) << contents;
    }
    ASSERT_TRUE(c.registerRegion("r-" + k.model, key, 0, outOff + outBytes).ok());

    inference::ModelInferRequest req;
    req.set_model_name(k.model);
    auto* in = req.add_inputs();
    in->set_name(k.input);
    in->set_datatype("FP32");
    for (auto d : k.shape) in->add_shape(d);
    auto setShm = [&](google::protobuf::Map<std::string, inference::InferParameter>* p, size_t off, size_t size) {
      (*p)["shared_memory_region"].set_string_param("r-" + k.model);
      (*p)["shared_memory_offset"].set_int64_param(static_cast<int64_t>(off));
      (*p)["shared_memory_byte_size"].set_int64_param(static_cast<int64_t>(size));
    };
    setShm(in->mutable_parameters(), inOff, inBytes);
    auto* out = req.add_outputs();
    out->set_name(k.output);
    setShm(out->mutable_parameters(), outOff, outBytes);
    inference::ModelInferResponse resp;
    grpc::Status s = c.infer(req, &resp);
    ASSERT_TRUE(s.ok()) << codeName(s.error_code()) << " " << s.error_message();
    ASSERT_EQ(resp.outputs_size(), 1);
    EXPECT_EQ(resp.outputs(0).name(), k.output);
    EXPECT_TRUE(resp.raw_output_contents_size() == 0 || resp.raw_output_contents(0).empty())
        << "an output written to shared memory must not also come back raw";

    std::ifstream f(file, std::ios::binary);
    std::string back((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    ASSERT_EQ(back.size(), outOff + outBytes);
    std::vector<float> shmOut(k.outFloats);
    std::memcpy(shmOut.data(), back.data() + outOff, outBytes);
    EXPECT_LE(maxAbsDiff(shmOut, raw), kTolerance);
    EXPECT_EQ(back.substr(0, inOff), std::string(inOff, '\xee')) << "bytes before the input were changed";

    inference::SystemSharedMemoryUnregisterRequest un;
    un.set_name("r-" + k.model);
    inference::SystemSharedMemoryUnregisterResponse unResp;
    EXPECT_TRUE(c.SystemSharedMemoryUnregister(un, &unResp).ok());
  }
}

TEST_F(AgentTest, SharedMemoryKeysOutsideTheSlotDirectoryAreRefused) {
  startAgent();
  Client c(socket(0));
  // Targets that exist, so that only the key check can refuse them.
  const std::string deviceDir = this->deviceDir();
  std::ofstream(deviceDir + "/x") << std::string(4096, 'x');
  std::ofstream(h.root() + "/outside.bin") << std::string(4096, 'o');
  fs::create_symlink(h.root() + "/outside.bin", shmDir(0) + "/abs-link");
  fs::create_symlink("../../x", shmDir(0) + "/rel-link");

  for (const std::string key : {"../x", "/etc/passwd", "abs-link", "rel-link", "..", ".", ""}) {
    grpc::Status s = c.registerRegion("bad", key, 0, 16);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << "key '" << key << "': " << codeName(s.error_code()) << " " << s.error_message();
    EXPECT_FALSE(s.error_message().empty()) << "key '" << key << "'";
  }
  // The files the bad keys name are untouched.
  std::ifstream x(deviceDir + "/x");
  std::string xs((std::istreambuf_iterator<char>(x)), std::istreambuf_iterator<char>());
  EXPECT_EQ(xs, std::string(4096, 'x'));

  // A plain file in the slot directory works, and its region is usable.
  std::string good(16 + 16, '\0');
  auto xin = randomFloats(4, 5);
  std::memcpy(good.data(), xin.data(), 16);
  std::ofstream(shmDir(0) + "/good.bin", std::ios::binary) << good;
  grpc::Status s = c.registerRegion("good", "good.bin", 0, 32);
  ASSERT_TRUE(s.ok()) << codeName(s.error_code()) << " " << s.error_message();
  inference::ModelInferRequest req;
  req.set_model_name("tiny");
  auto* in = req.add_inputs();
  in->set_name("x");
  in->set_datatype("FP32");
  in->add_shape(1);
  in->add_shape(4);
  (*in->mutable_parameters())["shared_memory_region"].set_string_param("good");
  (*in->mutable_parameters())["shared_memory_byte_size"].set_int64_param(16);
  inference::ModelInferResponse resp;
  s = c.infer(req, &resp);
  ASSERT_TRUE(s.ok()) << codeName(s.error_code()) << " " << s.error_message();
  ASSERT_EQ(resp.raw_output_contents_size(), 1);
  Reference tiny(modelFile("tiny"), "x", "y");
  EXPECT_LE(maxAbsDiff(floatsOf(resp.raw_output_contents(0)), tiny.run({1, 4}, xin)), kTolerance);

  // Misuse of a good region: the right code, and the agent keeps serving.
  auto withShm = [&](const std::string& region, int64_t inSize, int64_t outSize) {
    inference::ModelInferRequest r;
    r.set_model_name("tiny");
    auto* i = r.add_inputs();
    i->set_name("x");
    i->set_datatype("FP32");
    i->add_shape(1);
    i->add_shape(4);
    (*i->mutable_parameters())["shared_memory_region"].set_string_param(region);
    (*i->mutable_parameters())["shared_memory_byte_size"].set_int64_param(inSize);
    if (outSize >= 0) {
      auto* o = r.add_outputs();
      o->set_name("y");
      (*o->mutable_parameters())["shared_memory_region"].set_string_param(region);
      (*o->mutable_parameters())["shared_memory_offset"].set_int64_param(16);
      (*o->mutable_parameters())["shared_memory_byte_size"].set_int64_param(outSize);
    }
    return r;
  };
  struct Misuse {
    std::string what;
    inference::ModelInferRequest req;
    std::string code, mentions;
  };
  for (const auto& m : {Misuse{"unregistered region", withShm("nope", 16, -1), "NOT_FOUND", "nope"},
                        Misuse{"input byte size", withShm("good", 12, -1), "INVALID_ARGUMENT", "expected 16 bytes"},
                        Misuse{"output range too small", withShm("good", 16, 8), "INVALID_ARGUMENT", "12"}}) {
    inference::ModelInferResponse r;
    grpc::Status st = c.infer(m.req, &r);
    EXPECT_EQ(codeName(st.error_code()), m.code) << m.what << ": " << st.error_message();
    EXPECT_NE(st.error_message().find(m.mentions), std::string::npos) << m.what << ": " << st.error_message();
  }
  s = c.infer(withShm("good", 16, 12), &resp);
  ASSERT_TRUE(s.ok()) << codeName(s.error_code()) << " " << s.error_message();
  std::ifstream f(shmDir(0) + "/good.bin", std::ios::binary);
  std::string back((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  ASSERT_EQ(back.size(), 32u);
  std::vector<float> y(3);
  std::memcpy(y.data(), back.data() + 16, 12);
  EXPECT_LE(maxAbsDiff(y, tiny.run({1, 4}, xin)), kTolerance);
}

TEST_F(AgentTest, EveryBadRequestGetsTheRightCodeAndSaysWhatWasExpected) {
  startAgent({"--max-message-bytes", "1048576"});
  Client c(socket(0));
  auto x = randomFloats(4, 1);
  struct Bad {
    std::string what;
    inference::ModelInferRequest req;
    grpc::StatusCode code;
    std::vector<std::string> mentions;  // the message must contain each
  };
  std::vector<Bad> cases;
  cases.push_back({"wrong input name", inferRequest("tiny", "z", {1, 4}, bytesOf(x)), grpc::INVALID_ARGUMENT,
                   {"'z'", "x"}});
  cases.push_back({"wrong datatype", inferRequest("tiny", "x", {1, 4}, bytesOf(x), "INT32"), grpc::INVALID_ARGUMENT,
                   {"expected datatype FP32"}});
  cases.push_back({"wrong datatype, FP64 of the right size", inferRequest("tiny", "x", {1, 2}, bytesOf(x), "FP64"),
                   grpc::INVALID_ARGUMENT, {"expected datatype FP32"}});
  cases.push_back({"wrong shape", inferRequest("tiny", "x", {1, 5}, bytesOf(randomFloats(5, 1))),
                   grpc::INVALID_ARGUMENT, {"[-1,4]", "[1,5]"}});
  cases.push_back({"wrong rank", inferRequest("tiny", "x", {4}, bytesOf(x)), grpc::INVALID_ARGUMENT, {"[-1,4]"}});
  cases.push_back({"wrong byte count", inferRequest("tiny", "x", {1, 4}, bytesOf(x).substr(0, 12)),
                   grpc::INVALID_ARGUMENT, {"expected 16 bytes", "12"}});
  cases.push_back({"batch over max_batch_size", inferRequest("tiny", "x", {65, 4}, bytesOf(randomFloats(65 * 4, 2))),
                   grpc::INVALID_ARGUMENT, {"64", "65"}});
  cases.push_back({"batch 0", inferRequest("tiny", "x", {0, 4}, ""), grpc::INVALID_ARGUMENT, {"1 to 64"}});
  cases.push_back({"negative dimension", inferRequest("tiny", "x", {-1, 4}, bytesOf(x)), grpc::INVALID_ARGUMENT,
                   {"[-1,4]"}});
  {
    inference::ModelInferRequest req;
    req.set_model_name("tiny");
    cases.push_back({"no inputs", req, grpc::INVALID_ARGUMENT, {"missing input 'x'"}});
  }
  {
    auto req = inferRequest("tiny", "x", {1, 4}, bytesOf(x));
    req.set_model_version("7");
    cases.push_back({"unknown version", req, grpc::NOT_FOUND, {"7"}});
  }
  cases.push_back({"unknown model", inferRequest("no-such-model", "x", {1, 4}, bytesOf(x)), grpc::NOT_FOUND,
                   {"no-such-model"}});
  {
    auto req = inferRequest("tiny", "x", {1, 4}, bytesOf(x));
    req.add_outputs()->set_name("logits");
    cases.push_back({"unknown requested output", req, grpc::INVALID_ARGUMENT, {"logits", "y"}});
  }
  {
    // 4 SqueezeNet images: 2.3 MiB, over --max-message-bytes.
    cases.push_back({"message over --max-message-bytes",
                     inferRequest("squeezenet", "data", {4, 3, 224, 224}, bytesOf(randomFloats(4 * kSqueezeRow, 3))),
                     grpc::RESOURCE_EXHAUSTED,
                     {}});
  }
  for (const auto& b : cases) {
    inference::ModelInferResponse resp;
    grpc::Status s = c.infer(b.req, &resp);
    EXPECT_EQ(codeName(s.error_code()), codeName(b.code)) << b.what << ": " << s.error_message();
    for (const auto& m : b.mentions)
      EXPECT_NE(s.error_message().find(m), std::string::npos)
          << b.what << ": the message should mention '" << m << "': " << s.error_message();
    std::cout << "[ agent    ] " << b.what << ": " << codeName(s.error_code()) << " " << s.error_message() << "\n";
  }

  // Nothing stopped it: both models still infer correctly, on both slots.
  ASSERT_TRUE(h.agentRunning());
  Reference tiny(modelFile("tiny"), "x", "y");
  Reference squeeze(modelFile("squeezenet"), "data", "prob");
  auto img = randomFloats(kSqueezeRow, 4);
  for (int slot : {0, 1}) {
    Client ci(socket(slot));
    EXPECT_LE(maxAbsDiff(ci.inferFloats("tiny", "x", {1, 4}, x), tiny.run({1, 4}, x)), kTolerance);
    EXPECT_LE(maxAbsDiff(ci.inferFloats("squeezenet", "data", {1, 3, 224, 224}, img), squeeze.run({1, 3, 224, 224}, img)),
              kTolerance);
  }
}

// Two pods on one device: the one with few requests in flight is not starved by
// the one with many. Client A (slot s0) keeps 12 SqueezeNet requests in flight,
// client B (slot s1) keeps 2; with one shared FIFO B would get about 2/14 of
// the completed inferences, with per-slot queues taken in turn about half.
// Returns B's share.
double fairnessRun(const std::string& s0, const std::string& s1, std::chrono::milliseconds period,
                   const std::string& what) {
  auto req = inferRequest("squeezenet", "data", {1, 3, 224, 224}, bytesOf(randomFloats(kSqueezeRow, 11)));
  {
    Client warm(s0);  // the worker's engine instance is made on first use
    inference::ModelInferResponse resp;
    grpc::Status s = warm.infer(req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
  }
  Load a(s0, req, 12);
  Load b(s1, req, 2);
  std::this_thread::sleep_for(period);
  a.stop();
  b.stop();
  int na = a.okBeforeStop(), nb = b.okBeforeStop();
  double share = na + nb > 0 ? static_cast<double>(nb) / (na + nb) : 0;
  std::cout << "[ agent    ] fairness, " << what << ", over " << period.count() << " ms: A (s0, 12 in flight) " << na
            << ", B (s1, 2 in flight) " << nb << " completed; B's share " << share << "\n";
  EXPECT_EQ(a.failed(), 0) << a.firstError();
  EXPECT_EQ(b.failed(), 0) << b.firstError();
  EXPECT_GE(na + nb, 20) << "too few inferences to judge";
  return share;
}

// As served (SqueezeNet's config enables dynamic batching, preferred 8/16/32).
TEST_F(AgentTest, SlotsShareTheDeviceFairly) {
  startAgent();
  double share = fairnessRun(socket(0), socket(1), 2000ms, "dynamic batching on");
  EXPECT_GE(share, 0.30) << "B (2 in flight on s1) was crowded out by A (12 in flight on s0)";
}

// The same without dynamic batching: one request per run, slots taken in turn.
TEST_F(AgentTest, SlotsShareTheDeviceFairlyWithoutDynamicBatching) {
  std::ofstream(h.modelsDir() + "/squeezenet/config.json", std::ios::trunc) << R"({"max_batch_size": 32})";
  startAgent();
  double share = fairnessRun(socket(0), socket(1), 1500ms, "dynamic batching off");
  EXPECT_GE(share, 0.30) << "B (2 in flight on s1) was crowded out by A (12 in flight on s0)";
}

TEST_F(AgentTest, FullQueueRefusesWithResourceExhausted) {
  startAgent({"--max-queued", "2"});
  auto req = inferRequest("squeezenet", "data", {1, 3, 224, 224}, bytesOf(randomFloats(kSqueezeRow, 12)));
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 16; ++i) clients.push_back(std::make_unique<Client>(socket(i % 2)));
  std::vector<grpc::Status> results(16);
  std::latch go(16);
  std::vector<std::thread> threads;
  for (int i = 0; i < 16; ++i)
    threads.emplace_back([&, i] {
      inference::ModelInferResponse resp;
      go.arrive_and_wait();
      results[i] = clients[i]->infer(req, &resp);
    });
  for (auto& t : threads) t.join();
  int ok = 0, full = 0;
  for (const auto& s : results) {
    if (s.ok()) {
      ++ok;
    } else {
      EXPECT_EQ(codeName(s.error_code()), "RESOURCE_EXHAUSTED") << s.error_message();
      EXPECT_NE(s.error_message().find("queue is full"), std::string::npos) << s.error_message();
      ++full;
    }
  }
  std::cout << "[ agent    ] 16 concurrent with --max-queued 2: " << ok << " OK, " << full << " RESOURCE_EXHAUSTED\n";
  EXPECT_GE(full, 1);
  EXPECT_GE(ok, 1);
  // Once the burst is over, a request is served.
  Client c(socket(0));
  Reference squeeze(modelFile("squeezenet"), "data", "prob");
  auto img = randomFloats(kSqueezeRow, 13);
  EXPECT_LE(maxAbsDiff(c.inferFloats("squeezenet", "data", {1, 3, 224, 224}, img), squeeze.run({1, 3, 224, 224}, img)),
            kTolerance);
}

TEST_F(AgentTest, RequestPastItsDeadlineFailsAndIsNotRun) {
  startAgent();
  auto req = inferRequest("squeezenet", "data", {1, 3, 224, 224}, bytesOf(randomFloats(kSqueezeRow, 14)));
  Client c(socket(1));
  {
    inference::ModelInferResponse resp;
    ASSERT_TRUE(c.infer(req, &resp).ok());  // warm up the worker's engine
  }
  Load a(socket(0), req, 8);  // keeps the device busy
  std::this_thread::sleep_for(300ms);
  constexpr int kOneMs = 3, kFiveMs = 8;
  for (int i = 0; i < kOneMs; ++i) {
    inference::ModelInferResponse resp;
    grpc::Status s = c.infer(req, &resp, 1ms);
    EXPECT_EQ(codeName(s.error_code()), "DEADLINE_EXCEEDED") << s.error_message();
  }
  // 5 ms: long enough to reach the agent, too short for the queue behind A's
  // SqueezeNets. The agent must answer these without running them.
  int late = 0;
  for (int i = 0; i < kFiveMs; ++i) {
    inference::ModelInferResponse resp;
    grpc::Status s = c.infer(req, &resp, 5ms);
    late += s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
  }
  a.stop();
  EXPECT_EQ(a.failed(), 0) << a.firstError();
  // The agent keeps serving.
  Reference squeeze(modelFile("squeezenet"), "data", "prob");
  auto img = randomFloats(kSqueezeRow, 15);
  EXPECT_LE(maxAbsDiff(c.inferFloats("squeezenet", "data", {1, 3, 224, 224}, img), squeeze.run({1, 3, 224, 224}, img)),
            kTolerance);

  // Each short-deadline request was either answered without running (a
  // failure in the statistics), or had joined a batch before its deadline and
  // ran (an inference no client got), or never reached the service. Most were
  // the first kind: the queue behind A is far longer than 5 ms.
  std::this_thread::sleep_for(200ms);  // late answers of abandoned calls land
  auto st = Client(adminSocket()).statistics("squeezenet");  // every slot's figures
  const int64_t answered = a.ok() + 2;  // + warm-up + the final request
  const int64_t ranForNobody = static_cast<int64_t>(st.inference_count()) - answered;
  const int64_t failed = static_cast<int64_t>(st.inference_stats().fail().count());
  std::cout << "[ agent    ] deadline: A " << a.ok() << " OK; " << late << "/" << kFiveMs
            << " 5 ms calls failed; agent: fail " << failed << ", inference_count " << st.inference_count()
            << " (" << ranForNobody << " run for a client that had given up)\n";
  EXPECT_GE(late, kFiveMs - 2);
  EXPECT_GE(ranForNobody, 0);
  EXPECT_GE(failed, 4) << "expired requests were run instead of answered DEADLINE_EXCEEDED";
  EXPECT_LE(failed + ranForNobody, kOneMs + kFiveMs);
}

TEST_F(AgentTest, BrokenModelIsUnavailableWhileTheOthersServe) {
  fs::create_directories(h.modelsDir() + "/broken/1");
  std::ofstream(h.modelsDir() + "/broken/1/model.onnx") << "this is not an ONNX model";
  startAgent();
  Client c(socket(0));
  auto idx = c.index();
  ASSERT_EQ(idx.count("broken"), 1u);
  EXPECT_EQ(idx["broken"].state(), "UNAVAILABLE");
  EXPECT_FALSE(idx["broken"].reason().empty());
  EXPECT_EQ(idx["squeezenet"].state(), "READY") << idx["squeezenet"].reason();
  EXPECT_EQ(idx["tiny"].state(), "READY") << idx["tiny"].reason();
  std::cout << "[ agent    ] broken: " << idx["broken"].reason() << "\n";

  Reference tiny(modelFile("tiny"), "x", "y");
  auto x = randomFloats(4, 21);
  auto want = tiny.run({1, 4}, x);
  EXPECT_LE(maxAbsDiff(c.inferFloats("tiny", "x", {1, 4}, x), want), kTolerance);

  inference::ModelInferResponse resp;
  grpc::Status s = c.infer(inferRequest("broken", "x", {1, 4}, bytesOf(x)), &resp);
  EXPECT_EQ(codeName(s.error_code()), "UNAVAILABLE") << s.error_message();
  EXPECT_NE(s.error_message().find(idx["broken"].reason()), std::string::npos)
      << "the refusal should give the reason: " << s.error_message();
  {
    inference::ModelReadyRequest rr;
    rr.set_name("broken");
    inference::ModelReadyResponse rresp;
    EXPECT_TRUE(c.ModelReady(rr, &rresp).ok());
    EXPECT_FALSE(rresp.ready());
  }

  // Fixed on disk, loaded on request: it serves (on the other slot too: one device, one repository).
  fs::copy_file(modelFile("tiny"), h.modelsDir() + "/broken/1/model.onnx", fs::copy_options::overwrite_existing);
  fs::copy_file(h.modelsDir() + "/tiny/config.json", h.modelsDir() + "/broken/config.json");
  // Repository changes go through the admin socket (issue 10).
  Client admin(adminSocket());
  inference::RepositoryModelLoadRequest load;
  load.set_model_name("broken");
  inference::RepositoryModelLoadResponse loadResp;
  s = admin.RepositoryModelLoad(load, &loadResp);
  ASSERT_TRUE(s.ok()) << codeName(s.error_code()) << " " << s.error_message();
  EXPECT_EQ(c.index()["broken"].state(), "READY");
  EXPECT_LE(maxAbsDiff(c.inferFloats("broken", "x", {1, 4}, x), want), kTolerance);
  Client c1(socket(1));
  EXPECT_LE(maxAbsDiff(c1.inferFloats("broken", "x", {1, 4}, x), want), kTolerance);

  // Loading a folder that does not exist: NOT_FOUND.
  load.set_model_name("no-such-model");
  EXPECT_EQ(codeName(admin.RepositoryModelLoad(load, &loadResp).error_code()), "NOT_FOUND");

  // Unloaded: not ready, and inference is UNAVAILABLE; the others still serve.
  inference::RepositoryModelUnloadRequest unload;
  unload.set_model_name("tiny");
  inference::RepositoryModelUnloadResponse unloadResp;
  ASSERT_TRUE(admin.RepositoryModelUnload(unload, &unloadResp).ok());
  inference::ModelReadyRequest rr;
  rr.set_name("tiny");
  inference::ModelReadyResponse rresp;
  s = c.ModelReady(rr, &rresp);
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_FALSE(rresp.ready());
  s = c1.infer(inferRequest("tiny", "x", {1, 4}, bytesOf(x)), &resp);
  EXPECT_EQ(codeName(s.error_code()), "UNAVAILABLE") << s.error_message();
  EXPECT_NE(c.index()["tiny"].state(), "READY");
  EXPECT_LE(maxAbsDiff(c.inferFloats("broken", "x", {1, 4}, x), want), kTolerance);

  // And loaded again, it serves again.
  load.set_model_name("tiny");
  ASSERT_TRUE(admin.RepositoryModelLoad(load, &loadResp).ok());
  EXPECT_LE(maxAbsDiff(c1.inferFloats("tiny", "x", {1, 4}, x), want), kTolerance);

  // Each device's repository by name ("<class>/<device-id>"); an unknown one is NOT_FOUND, naming those served.
  std::string key;
  for (const auto& e : fs::directory_iterator(h.agentDir() + "/movidius-ncs2"))
    key = "movidius-ncs2/" + e.path().filename().string();
  inference::RepositoryIndexRequest ireq;
  ireq.set_repository_name(key);
  ireq.set_ready(true);
  inference::RepositoryIndexResponse iresp;
  grpc::ClientContext ictx;
  ictx.set_deadline(std::chrono::system_clock::now() + 10s);
  ASSERT_TRUE(admin.stub().RepositoryIndex(&ictx, ireq, &iresp).ok());
  std::set<std::string> ready;
  for (const auto& m : iresp.models()) ready.insert(m.name());
  EXPECT_TRUE(ready.count("broken") && ready.count("tiny")) << iresp.DebugString();
  ireq.set_repository_name("movidius-ncs2/no-such-device");
  grpc::ClientContext nctx;
  nctx.set_deadline(std::chrono::system_clock::now() + 10s);
  s = admin.stub().RepositoryIndex(&nctx, ireq, &iresp);
  EXPECT_EQ(codeName(s.error_code()), "NOT_FOUND") << s.error_message();
  EXPECT_NE(s.error_message().find(key), std::string::npos) << s.error_message();
  // A slot knows its device's repository by the same name, and no other.
  for (const std::string& name : {key, std::string("movidius-ncs2/no-such-device")}) {
    ireq.set_repository_name(name);
    grpc::ClientContext sctx;
    sctx.set_deadline(std::chrono::system_clock::now() + 10s);
    iresp.Clear();
    s = c.stub().RepositoryIndex(&sctx, ireq, &iresp);
    if (name == key) {
      EXPECT_TRUE(s.ok()) << s.error_message();
      EXPECT_GT(iresp.models_size(), 0);
    } else {
      EXPECT_EQ(codeName(s.error_code()), "NOT_FOUND") << s.error_message();
      EXPECT_NE(s.error_message().find("this slot serves only '" + key + "'"), std::string::npos) << s.error_message();
    }
  }
}

TEST_F(AgentTest, MetadataGivesBatchDimensionPlatformAndExtensions) {
  startAgent();
  Client c(socket(1));
  {
    inference::ServerLiveRequest req;
    inference::ServerLiveResponse resp;
    ASSERT_TRUE(c.ServerLive(req, &resp).ok());
    EXPECT_TRUE(resp.live());
  }
  {
    inference::ServerReadyRequest req;
    inference::ServerReadyResponse resp;
    ASSERT_TRUE(c.ServerReady(req, &resp).ok());
    EXPECT_TRUE(resp.ready());
  }
  {
    inference::ServerMetadataRequest req;
    inference::ServerMetadataResponse resp;
    ASSERT_TRUE(c.ServerMetadata(req, &resp).ok());
    EXPECT_FALSE(resp.name().empty());
    EXPECT_FALSE(resp.version().empty());
    std::vector<std::string> ext(resp.extensions().begin(), resp.extensions().end());
    for (const char* e : {"model_repository", "statistics", "system_shared_memory"})
      EXPECT_NE(std::find(ext.begin(), ext.end(), e), ext.end()) << "extension " << e << " not listed";
  }
  struct Want {
    std::string model, input, output;
    std::vector<int64_t> inShape, outShape;
  };
  for (const Want& w : {Want{"squeezenet", "data", "prob", {-1, 3, 224, 224}, {-1, 1000}},
                        Want{"tiny", "x", "y", {-1, 4}, {-1, 3}}}) {
    inference::ModelMetadataRequest req;
    req.set_name(w.model);
    inference::ModelMetadataResponse resp;
    grpc::Status s = c.ModelMetadata(req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(resp.name(), w.model);
    EXPECT_EQ(std::vector<std::string>(resp.versions().begin(), resp.versions().end()),
              std::vector<std::string>{"1"});
    EXPECT_NE(resp.platform().find("opencv-cpu"), std::string::npos) << resp.platform();
    EXPECT_NE(resp.platform().find("CPU"), std::string::npos) << resp.platform();
    ASSERT_EQ(resp.inputs_size(), 1);
    EXPECT_EQ(resp.inputs(0).name(), w.input);
    EXPECT_EQ(resp.inputs(0).datatype(), "FP32");
    EXPECT_EQ(std::vector<int64_t>(resp.inputs(0).shape().begin(), resp.inputs(0).shape().end()), w.inShape);
    ASSERT_EQ(resp.outputs_size(), 1);
    EXPECT_EQ(resp.outputs(0).name(), w.output);
    EXPECT_EQ(resp.outputs(0).datatype(), "FP32");
    EXPECT_EQ(std::vector<int64_t>(resp.outputs(0).shape().begin(), resp.outputs(0).shape().end()), w.outShape);
  }
  inference::ModelMetadataRequest req;
  req.set_name("no-such-model");
  inference::ModelMetadataResponse resp;
  EXPECT_EQ(codeName(c.ModelMetadata(req, &resp).error_code()), "NOT_FOUND");
}

TEST_F(AgentTest, DynamicBatchingMergesConcurrentRequests) {
  startAgent();
  auto img = randomFloats(kSqueezeRow, 16);
  auto req = inferRequest("squeezenet", "data", {1, 3, 224, 224}, bytesOf(img));
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 16; ++i) clients.push_back(std::make_unique<Client>(socket(i % 2)));
  std::vector<grpc::Status> results(16);
  std::vector<std::string> outputs(16);
  std::latch go(16);
  std::vector<std::thread> threads;
  for (int i = 0; i < 16; ++i)
    threads.emplace_back([&, i] {
      inference::ModelInferResponse resp;
      go.arrive_and_wait();
      results[i] = clients[i]->infer(req, &resp);
      if (resp.raw_output_contents_size()) outputs[i] = resp.raw_output_contents(0);
    });
  for (auto& t : threads) t.join();
  Reference squeeze(modelFile("squeezenet"), "data", "prob");
  auto want = squeeze.run({1, 3, 224, 224}, img);
  for (int i = 0; i < 16; ++i) {
    EXPECT_TRUE(results[i].ok()) << i << ": " << results[i].error_message();
    EXPECT_LE(maxAbsDiff(floatsOf(outputs[i]), want), kTolerance) << "request " << i;
  }
  auto st = Client(adminSocket()).statistics("squeezenet");  // the device's figures, every slot's
  std::string batches;
  uint64_t largest = 0;
  for (const auto& b : st.batch_stats()) {
    batches += " " + std::to_string(b.batch_size()) + "x" + std::to_string(b.compute_infer().count());
    largest = std::max<uint64_t>(largest, b.batch_size());
  }
  std::cout << "[ agent    ] 16 concurrent: inference_count " << st.inference_count() << ", execution_count "
            << st.execution_count() << ", batches (size x runs):" << batches << "\n";
  EXPECT_EQ(st.inference_count(), 16u);
  EXPECT_LT(st.execution_count(), 16u);
  EXPECT_GT(largest, 1u);
  EXPECT_EQ(st.inference_stats().success().count(), 16u);
}

TEST_F(AgentTest, BackendNotBuiltInMakesTheDeviceUnavailable) {
  startAgent({}, "openvino");
  Client c(socket(0));
  inference::ServerLiveRequest lreq;
  inference::ServerLiveResponse lresp;
  ASSERT_TRUE(c.ServerLive(lreq, &lresp).ok());
  EXPECT_TRUE(lresp.live());
  inference::ServerReadyRequest rreq;
  inference::ServerReadyResponse rresp;
  ASSERT_TRUE(c.ServerReady(rreq, &rresp).ok());
  EXPECT_FALSE(rresp.ready());
  auto idx = c.index();
  EXPECT_EQ(idx.count("squeezenet"), 1u);
  EXPECT_EQ(idx.count("tiny"), 1u);
  for (const auto& [name, m] : idx) {
    EXPECT_EQ(m.state(), "UNAVAILABLE") << name;
    EXPECT_NE(m.reason().find("openvino"), std::string::npos) << name << ": " << m.reason();
  }
  inference::ModelInferResponse resp;
  grpc::Status s = c.infer(inferRequest("tiny", "x", {1, 4}, bytesOf(randomFloats(4, 1))), &resp);
  EXPECT_EQ(codeName(s.error_code()), "UNAVAILABLE") << s.error_message();
  EXPECT_NE(s.error_message().find("openvino"), std::string::npos) << s.error_message();
  std::cout << "[ agent    ] openvino: " << s.error_message() << "\n";
}

TEST_F(AgentTest, SlotLayoutPermissionsAndRestart) {
  startAgent();
  // The device directory is named by the device ID, which is filename-safe.
  EXPECT_FALSE(id_.empty());
  EXPECT_EQ(id_.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"),
            std::string::npos)
      << id_;
  std::vector<std::string> classes;
  for (const auto& e : fs::directory_iterator(h.agentDir())) classes.push_back(e.path().filename().string());
  std::sort(classes.begin(), classes.end());
  // The admin socket, the probe's socket (issue 10, section 8) and a directory per class.
  EXPECT_EQ(classes, (std::vector<std::string>{"admin.sock", "movidius-ncs2", "probe.sock"}));
  const std::string idBefore = id_;
  struct stat dirSt[2] {};
  for (int k : {0, 1}) {
    SCOPED_TRACE("s" + std::to_string(k));
    EXPECT_EQ(socket(k), h.agentDir() + "/movidius-ncs2/" + id_ + "/s" + std::to_string(k) + "/inference.sock");
    ASSERT_EQ(::stat(slotDir(k).c_str(), &dirSt[k]), 0);
    EXPECT_TRUE(S_ISDIR(dirSt[k].st_mode));
    EXPECT_EQ(dirSt[k].st_mode & 07777, 0755u) << "the socket's directory is the agent's alone";
    struct stat shmSt {};
    ASSERT_EQ(::stat(shmDir(k).c_str(), &shmSt), 0);
    EXPECT_EQ(shmSt.st_mode & 07777, 01777u) << "the pod's shared-memory files go in shm/";
    struct stat sockSt {};
    ASSERT_EQ(::stat(socket(k).c_str(), &sockSt), 0);
    EXPECT_TRUE(S_ISSOCK(sockSt.st_mode));
    EXPECT_EQ(sockSt.st_mode & 07777, 0666u);
  }
  // Exactly the slot directories under the device directory.
  std::vector<std::string> entries;
  for (const auto& e : fs::directory_iterator(deviceDir()))
    entries.push_back(e.path().filename().string());
  std::sort(entries.begin(), entries.end());
  EXPECT_EQ(entries, (std::vector<std::string>{"s0", "s1"}));
  // A pod's file in its slot directory survives the restart.
  std::ofstream(shmDir(1) + "/pod-file") << "mine";

  Reference tiny(modelFile("tiny"), "x", "y");
  auto x = randomFloats(4, 41);
  auto want = tiny.run({1, 4}, x);
  EXPECT_LE(maxAbsDiff(Client(socket(0)).inferFloats("tiny", "x", {1, 4}, x), want), kTolerance);

  EXPECT_EQ(h.stopAgent(SIGTERM), 0);
  for (int k : {0, 1}) {
    SCOPED_TRACE("s" + std::to_string(k));
    EXPECT_FALSE(fs::exists(fs::symlink_status(socket(k)))) << "the socket outlived the agent";
    struct stat st {};
    ASSERT_EQ(::stat(slotDir(k).c_str(), &st), 0) << "the slot directory must stay (a pod has it mounted)";
    EXPECT_EQ(st.st_ino, dirSt[k].st_ino);
  }
  EXPECT_TRUE(fs::exists(shmDir(1) + "/pod-file"));

  // A pod keeps its mount of the slot directory: it finds the new socket there.
  int dirFd = ::open(slotDir(0).c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(dirFd, 0);
  startAgent();
  EXPECT_EQ(id_, idBefore) << "the device ID changed across an agent restart";
  for (int k : {0, 1}) {
    SCOPED_TRACE("s" + std::to_string(k));
    struct stat st {};
    ASSERT_EQ(::stat(slotDir(k).c_str(), &st), 0);
    EXPECT_EQ(st.st_ino, dirSt[k].st_ino) << "the slot directory was replaced";
    EXPECT_EQ(st.st_mode & 07777, 0755u);
    struct stat sockSt {};
    ASSERT_EQ(::stat(socket(k).c_str(), &sockSt), 0);
    EXPECT_TRUE(S_ISSOCK(sockSt.st_mode));
    EXPECT_EQ(sockSt.st_mode & 07777, 0666u);
    EXPECT_LE(maxAbsDiff(Client(socket(k)).inferFloats("tiny", "x", {1, 4}, x), want), kTolerance);
  }
  struct stat viaFd {};
  EXPECT_EQ(::fstatat(dirFd, "inference.sock", &viaFd, 0), 0) << "the socket is not in the directory the pod holds";
  ::close(dirFd);
  EXPECT_TRUE(fs::exists(shmDir(1) + "/pod-file"));
}

// SIGTERM while requests are in flight: exit 0 soon, no socket left behind,
// and the calls in flight get answers (not a hang).
TEST_F(AgentTest, SigtermUnderLoadExitsZeroAndRemovesTheSockets) {
  startAgent();
  auto req = inferRequest("squeezenet", "data", {1, 3, 224, 224}, bytesOf(randomFloats(kSqueezeRow, 51)));
  Load a(socket(0), req, 8);
  Load b(socket(1), req, 2);
  std::this_thread::sleep_for(300ms);
  a.requestStop();
  b.requestStop();
  auto t0 = Clock::now();
  EXPECT_EQ(h.stopAgent(SIGTERM), 0);
  auto took = Clock::now() - t0;
  a.stop();
  b.stop();
  auto ended = Clock::now() - t0;
  std::cout << "[ agent    ] SIGTERM with 10 requests in flight: exited after "
            << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
            << " ms; the calls in flight ended within "
            << std::chrono::duration_cast<std::chrono::milliseconds>(ended).count() << " ms: " << a.endedAfterStop()
            << " (s0); " << b.endedAfterStop() << " (s1)\n";
  EXPECT_LT(took, 5s);
  EXPECT_LT(ended, 5s) << "calls in flight were left hanging";
  EXPECT_GT(a.ok() + b.ok(), 0);
  for (int k : {0, 1}) {
    EXPECT_FALSE(fs::exists(fs::symlink_status(socket(k)))) << "s" << k << ": the socket outlived the agent";
    EXPECT_TRUE(fs::is_directory(slotDir(k)));
  }
}

// Two devices, each with its own slot sockets; both serve.
TEST_F(AgentTest, TwoDevicesServeTheirOwnSlots) {
  h.plug("movidius-ncs.umockdev");
  std::string config = R"({"classes": [)"
                       R"({"name": "movidius-ncs2", "mode": "agent", "backend": "opencv-cpu", "slots": 2, "reenumerates": true,)"
                       R"( "match": [{"subsystem": "usb", "vendor": "03e7", "product": "2485"}, {"subsystem": "usb", "vendor": "03e7", "product": "f63b"}]},)"
                       R"({"name": "movidius-ncs", "mode": "agent", "backend": "opencv-cpu", "slots": 1, "reenumerates": true,)"
                       R"( "match": [{"subsystem": "usb", "vendor": "03e7", "product": "2150"}]}]})";
  h.startAgent(h.writeConfig(config));
  ASSERT_TRUE(h.waitForAgentLog("serving 2 slot socket(s)")) << h.agentLog();
  ASSERT_TRUE(h.waitForAgentLog("serving 1 slot socket(s)")) << h.agentLog();
  ASSERT_NO_FATAL_FAILURE(id_ = deviceIdOf(kClass));
  const std::string ncsId = deviceIdOf("movidius-ncs");
  EXPECT_NE(ncsId, id_);
  const std::string ncs = h.slotSocket("movidius-ncs", ncsId, 0);
  EXPECT_EQ(ncs, h.agentDir() + "/movidius-ncs/" + ncsId + "/s0/inference.sock");
  EXPECT_FALSE(fs::exists(h.agentDir() + "/movidius-ncs/" + ncsId + "/s1"));
  Reference tiny(modelFile("tiny"), "x", "y");
  auto x = randomFloats(4, 61);
  auto want = tiny.run({1, 4}, x);
  for (const auto& sock : {ncs, socket(0), socket(1)}) {
    SCOPED_TRACE(sock);
    struct stat st {};
    ASSERT_EQ(::stat(sock.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0666u);
    EXPECT_LE(maxAbsDiff(Client(sock).inferFloats("tiny", "x", {1, 4}, x), want), kTolerance);
  }
}

}  // namespace
}  // namespace kubeaccel::testing
