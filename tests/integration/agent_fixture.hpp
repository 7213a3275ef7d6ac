#pragma once
// What the agent's integration tests share: a KServe v2 client on a slot
// socket, OpenCV DNN run in the test process as the reference, request
// builders, a load generator, and the fixture that starts the real agent on a
// simulated NCS2 (2 slots).
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <grpcpp/grpcpp.h>

#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "inference/grpc_service.grpc.pb.h"
#include "plugin_harness.hpp"

namespace kubeaccel::testing {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using inference::GRPCInferenceService;
using Clock = std::chrono::steady_clock;

const std::string kClass = "movidius-ncs2";
constexpr int64_t kSqueezeRow = 3 * 224 * 224;
constexpr float kTolerance = 1e-5f;

// The NCS2 class in agent mode on `backend` with `slots` slots.
inline std::string agentConfig(const std::string& backend, int slots = 2) {
  return R"({"classes": [{"name": "movidius-ncs2", "mode": "agent", "backend": ")" + backend +
         R"(", "slots": )" + std::to_string(slots) +
         R"(, "reenumerates": true, "match": [{"subsystem": "usb", "vendor": "03e7", "product": "2485"},)"
         R"( {"subsystem": "usb", "vendor": "03e7", "product": "f63b"}]}]})";
}

inline std::vector<float> randomFloats(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

inline std::string bytesOf(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

inline std::vector<float> floatsOf(const std::string& s) {
  std::vector<float> v(s.size() / sizeof(float));
  std::memcpy(v.data(), s.data(), v.size() * sizeof(float));
  return v;
}

// Max |a-b|; infinity when the sizes differ (or a value is NaN).
inline float maxAbsDiff(const float* a, const float* b, size_t n) {
  float m = 0;
  for (size_t i = 0; i < n; ++i) {
    float d = std::fabs(a[i] - b[i]);
    if (!(d <= m)) m = std::isnan(d) ? INFINITY : d;
  }
  return m;
}
inline float maxAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() != b.size() ? INFINITY : maxAbsDiff(a.data(), b.data(), a.size());
}

// OpenCV DNN in this process: the agent's engine, run directly on the model file.
class Reference {
 public:
  Reference(const std::string& onnx, std::string input, std::string output)
      : net_(cv::dnn::readNetFromONNX(onnx)), input_(std::move(input)), output_(std::move(output)) {
    net_.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
    net_.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
  }
  std::vector<float> run(const std::vector<int>& shape, const std::vector<float>& data) {
    cv::Mat blob(static_cast<int>(shape.size()), shape.data(), CV_32F, const_cast<float*>(data.data()));
    net_.setInput(blob, input_);
    cv::Mat out = net_.forward(output_);
    if (!out.isContinuous()) out = out.clone();
    return std::vector<float>(out.ptr<float>(), out.ptr<float>() + out.total());
  }

 private:
  cv::dnn::Net net_;
  std::string input_, output_;
};

inline inference::ModelInferRequest inferRequest(const std::string& model, const std::string& input,
                                          const std::vector<int64_t>& shape, const std::string& raw,
                                          const std::string& datatype = "FP32") {
  inference::ModelInferRequest req;
  req.set_model_name(model);
  auto* in = req.add_inputs();
  in->set_name(input);
  in->set_datatype(datatype);
  for (int64_t d : shape) in->add_shape(d);
  req.add_raw_input_contents(raw);
  return req;
}

// A KServe v2 client on one slot socket.
class Client {
 public:
  explicit Client(const std::string& socket) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(64 << 20);
    args.SetMaxSendMessageSize(64 << 20);
    channel_ = grpc::CreateCustomChannel("unix://" + socket, grpc::InsecureChannelCredentials(), args);
    stub_ = GRPCInferenceService::NewStub(channel_);
  }

  grpc::Status infer(const inference::ModelInferRequest& req, inference::ModelInferResponse* resp,
                     std::chrono::milliseconds deadline = 20s) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + deadline);
    return stub_->ModelInfer(&ctx, req, resp);
  }
  // With the caller's context (to cancel it from another thread, say).
  grpc::Status inferWith(grpc::ClientContext* ctx, const inference::ModelInferRequest& req,
                         inference::ModelInferResponse* resp) {
    return stub_->ModelInfer(ctx, req, resp);
  }
  GRPCInferenceService::Stub& stub() { return *stub_; }
  // The first output of a raw FP32 inference, as floats; fails the test when not OK.
  std::vector<float> inferFloats(const std::string& model, const std::string& input, const std::vector<int64_t>& shape,
                                 const std::vector<float>& data, inference::ModelInferResponse* respOut = nullptr) {
    inference::ModelInferResponse resp;
    grpc::Status s = infer(inferRequest(model, input, shape, bytesOf(data)), &resp);
    EXPECT_TRUE(s.ok()) << model << ": " << s.error_code() << " " << s.error_message();
    if (respOut) *respOut = resp;
    if (!s.ok() || resp.raw_output_contents_size() < 1) return {};
    return floatsOf(resp.raw_output_contents(0));
  }

#define KUBEACCEL_CALL(Method)                                                                          \
  grpc::Status Method(const inference::Method##Request& req, inference::Method##Response* resp,        \
                      std::chrono::milliseconds deadline = 20s) {                                       \
    grpc::ClientContext ctx;                                                                            \
    ctx.set_deadline(std::chrono::system_clock::now() + deadline);                                      \
    return stub_->Method(&ctx, req, resp);                                                              \
  }
  KUBEACCEL_CALL(ServerLive)
  KUBEACCEL_CALL(ServerReady)
  KUBEACCEL_CALL(ServerMetadata)
  KUBEACCEL_CALL(ModelReady)
  KUBEACCEL_CALL(ModelMetadata)
  KUBEACCEL_CALL(ModelStatistics)
  KUBEACCEL_CALL(RepositoryIndex)
  KUBEACCEL_CALL(RepositoryModelLoad)
  KUBEACCEL_CALL(RepositoryModelUnload)
  KUBEACCEL_CALL(SystemSharedMemoryRegister)
  KUBEACCEL_CALL(SystemSharedMemoryUnregister)
#undef KUBEACCEL_CALL

  grpc::Status registerRegion(const std::string& name, const std::string& key, uint64_t offset, uint64_t size) {
    inference::SystemSharedMemoryRegisterRequest req;
    req.set_name(name);
    req.set_key(key);
    req.set_offset(offset);
    req.set_byte_size(size);
    inference::SystemSharedMemoryRegisterResponse resp;
    return SystemSharedMemoryRegister(req, &resp);
  }
  std::map<std::string, inference::RepositoryIndexResponse::ModelIndex> index() {
    inference::RepositoryIndexRequest req;
    inference::RepositoryIndexResponse resp;
    grpc::Status s = RepositoryIndex(req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    std::map<std::string, inference::RepositoryIndexResponse::ModelIndex> out;
    for (const auto& m : resp.models()) out[m.name()] = m;
    return out;
  }
  inference::ModelStatistics statistics(const std::string& model) {
    inference::ModelStatisticsRequest req;
    req.set_name(model);
    inference::ModelStatisticsResponse resp;
    grpc::Status s = ModelStatistics(req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.model_stats_size() ? resp.model_stats(0) : inference::ModelStatistics{};
  }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<GRPCInferenceService::Stub> stub_;
};

inline std::string codeName(grpc::StatusCode c) {
  switch (c) {
    case grpc::OK: return "OK";
    case grpc::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::NOT_FOUND: return "NOT_FOUND";
    case grpc::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case grpc::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::CANCELLED: return "CANCELLED";
    case grpc::INTERNAL: return "INTERNAL";
    case grpc::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case grpc::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case grpc::ALREADY_EXISTS: return "ALREADY_EXISTS";
    case grpc::UNIMPLEMENTED: return "UNIMPLEMENTED";
    default: return std::to_string(static_cast<int>(c));
  }
}

// Keeps `inFlight` copies of `req` in flight on `socket` until stop(), each
// thread sending the next request as soon as its answer arrives.
class Load {
 public:
  Load(const std::string& socket, inference::ModelInferRequest req, int inFlight) : req_(std::move(req)) {
    for (int i = 0; i < inFlight; ++i) clients_.push_back(std::make_unique<Client>(socket));
    for (int i = 0; i < inFlight; ++i)
      threads_.emplace_back([this, i] {
        while (!stop_) {
          inference::ModelInferResponse resp;
          grpc::Status s = clients_[i]->infer(req_, &resp);
          if (stop_) {
            std::lock_guard lock(mu_);
            afterStop_[codeName(s.error_code())]++;
          }
          if (s.ok()) {
            ++ok_;
            if (!stop_) ++okBeforeStop_;
          } else {
            ++failed_;
            std::lock_guard lock(mu_);
            if (firstError_.empty()) firstError_ = codeName(s.error_code()) + " " + s.error_message();
          }
        }
      });
  }
  ~Load() { stop(); }
  // No new requests; those in flight go on.
  void requestStop() { stop_ = true; }
  void stop() {
    stop_ = true;
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }
  int ok() const { return ok_; }                      // every OK answer, also those after stop()
  int okBeforeStop() const { return okBeforeStop_; }  // answers that arrived before stop()
  int failed() const { return failed_; }
  std::string firstError() {
    std::lock_guard lock(mu_);
    return firstError_;
  }
  // How the calls that were in flight at requestStop()/stop() ended, by code.
  std::string endedAfterStop() {
    std::lock_guard lock(mu_);
    std::string out;
    for (const auto& [code, n] : afterStop_) out += (out.empty() ? "" : ", ") + std::to_string(n) + " " + code;
    return out;
  }

 private:
  const inference::ModelInferRequest req_;
  std::vector<std::unique_ptr<Client>> clients_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stop_{false};
  std::atomic<int> ok_{0}, okBeforeStop_{0}, failed_{0};
  std::mutex mu_;
  std::string firstError_;
  std::map<std::string, int> afterStop_;
};

inline size_t countOf(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1)) ++n;
  return n;
}

class AgentTest : public ::testing::Test {
 protected:
  PluginHarness h;
  std::string id_;  // the NCS2's device ID, as the agent names its directory

  void SetUp() override { h.plug("movidius-ncs2-unbooted.umockdev"); }

  // Starts the agent on the NCS2 (2 slots) and waits for its slot sockets.
  void startAgent(const std::vector<std::string>& extraArgs = {}, const std::string& backend = "opencv-cpu") {
    size_t before = countOf(logIfAny(), "serving 2 slot socket(s)");
    h.startAgent(h.writeConfig(agentConfig(backend)), extraArgs);
    auto deadline = Clock::now() + 20s;
    while (countOf(h.agentLog(), "serving 2 slot socket(s)") <= before) {
      ASSERT_LT(Clock::now(), deadline) << "the agent did not serve its slots:\n" << h.agentLog();
      std::this_thread::sleep_for(5ms);
    }
    ASSERT_NO_FATAL_FAILURE(id_ = deviceIdOf(kClass));
  }
  // The one device directory under <agent-dir>/<cls>/: its name is the device ID.
  std::string deviceIdOf(const std::string& cls) const {
    std::vector<std::string> ids;
    for (const auto& e : fs::directory_iterator(h.agentDir() + "/" + cls))
      if (e.is_directory()) ids.push_back(e.path().filename().string());
    EXPECT_EQ(ids.size(), 1u) << "device directories under " << h.agentDir() << "/" << cls;
    return ids.empty() ? "none" : ids.front();
  }
  std::string logIfAny() const { return fs::exists(h.root() + "/agent.log") ? h.agentLog() : ""; }
  std::string deviceDir() const { return h.agentDir() + "/" + kClass + "/" + id_; }
  std::string slotDir(int k) const { return deviceDir() + "/s" + std::to_string(k); }
  // Where the slot's pod writes its shared-memory files (the only part of the
  // slot directory it may write).
  std::string shmDir(int k) const { return slotDir(k) + "/shm"; }
  // The agent's admin socket: repository changes, the node's figures.
  std::string adminSocket() const { return h.agentDir() + "/admin.sock"; }
  std::string socket(int k) const { return h.slotSocket(kClass, id_, k); }
  std::string modelFile(const std::string& name) { return h.modelsDir() + "/" + name + "/1/model.onnx"; }

  void TearDown() override {
    if (h.agentRunning()) {
      EXPECT_EQ(h.stopAgent(SIGTERM), 0) << "SIGTERM must exit 0";
    }
    std::string log = logIfAny();
    for (const char* report : {"AddressSanitizer", "LeakSanitizer", "runtime error:", "UndefinedBehaviorSanitizer"})
      EXPECT_EQ(log.find(report), std::string::npos) << "sanitizer report in the agent's log: " << report;
    if (HasFailure()) std::cerr << "---- agent log ----\n" << log << "-------------------\n";
  }
};

}  // namespace kubeaccel::testing
