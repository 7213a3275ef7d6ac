// The agent serving an NVIDIA GPU in agent mode, on a machine that has one
// (docs/gpu.md). Where there is no GPU, or no GPU bundle, every test is
// skipped and says why: they run on the GPU machine through scripts/gpu.
//
// The environment names what scripts/gpu/run-on-gpu made there:
//   KUBEACCEL_GPU_RUN  the bundle: bin/kubeaccel-agent, backends/ (the torch
//                      backend built against that machine's libtorch) and
//                      test-repo/ (models made there with seeded weights:
//                      resnet18-{cpu,fp32,fp16,aoti}, hog).
// Tolerances (CUDA against the CPU backend, same model file and input), as a
// fraction of the largest |output| of the CPU run: FP32 1e-2 (cuDNN may use
// TF32 for FP32 convolutions), FP16 5e-2.

#include <gtest/gtest.h>
#include <grpcpp/grpcpp.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

#include "inference/grpc_service.grpc.pb.h"
#include "kubelet_standin.hpp"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using inference::GRPCInferenceService;

constexpr int kSlots = 4;
constexpr int64_t kImage = 3 * 224 * 224;

std::string bundle() {
  const char* b = std::getenv("KUBEACCEL_GPU_RUN");
  return b ? b : "";
}

// Why the GPU tests cannot run here, or "" when they can.
std::string whyNot() {
  if (!fs::exists("/dev/nvidiactl")) return "no NVIDIA GPU on this machine (no /dev/nvidiactl)";
  if (bundle().empty() || !fs::exists(bundle() + "/test-repo"))
    return "KUBEACCEL_GPU_RUN does not name a GPU bundle with test-repo/ (scripts/gpu/run-on-gpu sets it)";
  return "";
}

std::vector<float> randomImages(int64_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  std::vector<float> v(static_cast<size_t>(n * kImage));
  for (auto& x : v) x = dist(rng);
  return v;
}

std::string bytesOf(const std::vector<float>& v) { return {reinterpret_cast<const char*>(v.data()), v.size() * 4}; }

std::vector<float> floatsOf(const std::string& s) {
  std::vector<float> v(s.size() / 4);
  std::memcpy(v.data(), s.data(), v.size() * 4);
  return v;
}

// max |a-b| / max |ref|; infinity when sizes differ or a value is NaN.
double relativeError(const std::vector<float>& got, const std::vector<float>& ref) {
  if (got.size() != ref.size() || ref.empty()) return INFINITY;
  double scale = 0, worst = 0;
  for (float r : ref) scale = std::max(scale, static_cast<double>(std::fabs(r)));
  for (size_t i = 0; i < ref.size(); ++i) {
    double d = std::fabs(static_cast<double>(got[i]) - ref[i]);
    if (std::isnan(d)) return INFINITY;
    worst = std::max(worst, d);
  }
  return scale > 0 ? worst / scale : worst;
}

inference::ModelInferRequest request(const std::string& model, const std::string& input, std::vector<int64_t> shape,
                                     const std::vector<float>& data) {
  inference::ModelInferRequest req;
  req.set_model_name(model);
  auto* in = req.add_inputs();
  in->set_name(input);
  in->set_datatype("FP32");
  for (int64_t d : shape) in->add_shape(d);
  req.add_raw_input_contents(bytesOf(data));
  return req;
}

class Slot {
 public:
  explicit Slot(const std::string& socket) : dir_(fs::path(socket).parent_path()) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(64 << 20);
    args.SetMaxSendMessageSize(64 << 20);
    stub_ = GRPCInferenceService::NewStub(
        grpc::CreateCustomChannel("unix://" + socket, grpc::InsecureChannelCredentials(), args));
  }
  grpc::Status infer(const inference::ModelInferRequest& req, inference::ModelInferResponse* resp) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 60s);
    return stub_->ModelInfer(&ctx, req, resp);
  }
  // The first output as floats; fails the test when the call fails.
  std::vector<float> images(const std::string& model, const std::vector<float>& data) {
    inference::ModelInferResponse resp;
    grpc::Status s = infer(request(model, "input", {static_cast<int64_t>(data.size()) / kImage, 3, 224, 224}, data), &resp);
    EXPECT_TRUE(s.ok()) << model << ": " << s.error_code() << " " << s.error_message();
    return s.ok() && resp.raw_output_contents_size() ? floatsOf(resp.raw_output_contents(0)) : std::vector<float>{};
  }
  bool ready() {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 2s);
    inference::ServerReadyRequest req;
    inference::ServerReadyResponse resp;
    return stub_->ServerReady(&ctx, req, &resp).ok() && resp.ready();
  }
  GRPCInferenceService::Stub& stub() { return *stub_; }
  const fs::path& dir() const { return dir_; }

 private:
  fs::path dir_;
  std::unique_ptr<GRPCInferenceService::Stub> stub_;
};

// The agent from the bundle, as the DaemonSet runs it (uid 0 here; the GPU
// machine has no setpriv policy to apply), on a class that takes every
// NVIDIA GPU in agent mode with kSlots slots.
class GpuAgent : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = whyNot(); !why.empty()) GTEST_SKIP() << "skipped: " << why;
    // On tmpfs, as docs/gpu.md advises: the kernel pins (cudaHostRegister)
    // shared memory pages, but not a disk filesystem's file pages.
    fs::path base = fs::is_directory("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
    dir_ = base / ("kubeaccel-gpu-test-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    std::ofstream(dir_ / "config.json")
        << R"({"builtin": false, "classes": [{"name": "nvidia-gpu", "mode": "agent", "backend": "torch", "slots": )"
        << kSlots << R"(, "match": [{"subsystem": "pci", "vendor": "10de", "class": "0302"}],)"
        << R"( "nodes": {"required": ["/dev/nvidia[0-9]*"]}}]})";
    start();
  }
  void TearDown() override {
    stop();
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  void start() {
    pid_ = ::fork();
    if (pid_ == 0) {
      std::string log = (dir_ / "agent.log").string();
      int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      std::string agent = bundle() + "/bin/kubeaccel-agent", cfg = (dir_ / "config.json").string(),
                  agentDir = (dir_ / "agent").string(), models = bundle() + "/test-repo",
                  backends = bundle() + "/backends";
      ::execl(agent.c_str(), agent.c_str(), "--config", cfg.c_str(), "--agent-dir", agentDir.c_str(), "--models",
              models.c_str(), "--backend-dir", backends.c_str(), "--log-level", "debug", nullptr);
      ::_exit(127);
    }
    auto deadline = std::chrono::steady_clock::now() + 180s;
    while (std::chrono::steady_clock::now() < deadline) {
      sockets_.clear();
      std::error_code ec;
      for (auto& e : fs::recursive_directory_iterator(dir_ / "agent", ec))
        if (e.path().filename() == "inference.sock") sockets_.push_back(e.path().string());
      std::sort(sockets_.begin(), sockets_.end());
      if (sockets_.size() >= kSlots) {
        bool all = true;
        for (const auto& s : sockets_) all = all && Slot(s).ready();
        if (all) return;
      }
      std::this_thread::sleep_for(500ms);
    }
    FAIL() << "the agent's GPU slots were not ready within 180 s; its log:\n" << log();
  }
  void stop() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int status = 0;
      ::waitpid(pid_, &status, 0);
      pid_ = -1;
    }
  }
  std::string log() const {
    std::ifstream f(dir_ / "agent.log");
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }

  fs::path dir_;
  pid_t pid_ = -1;
  std::vector<std::string> sockets_;  // every slot of every GPU, sorted
};

void expectCudaMatchesCpu(Slot& slot, const std::string& cudaModel, double tolerance) {
  auto input = randomImages(2, 7);
  auto cpu = slot.images("resnet18-cpu", input);
  auto gpu = slot.images(cudaModel, input);
  ASSERT_EQ(cpu.size(), static_cast<size_t>(2 * 1000));
  double err = relativeError(gpu, cpu);
  EXPECT_LE(err, tolerance) << cudaModel << " against the CPU backend";
  std::printf("[ measured ] %s vs resnet18-cpu: max relative error %.3g (tolerance %.3g)\n", cudaModel.c_str(), err,
              tolerance);
}

TEST_F(GpuAgent, CudaFp32OutputsEqualTheCpuBackends) {
  Slot slot(sockets_[0]);
  expectCudaMatchesCpu(slot, "resnet18-fp32", 1e-2);
}

TEST_F(GpuAgent, CudaFp16OutputsEqualTheCpuBackends) {
  Slot slot(sockets_[0]);
  expectCudaMatchesCpu(slot, "resnet18-fp16", 5e-2);
}

// model.pt2: the same weights compiled by AOTInductor (libtorch >= 2.6).
TEST_F(GpuAgent, AnAotInductorPackageEqualsTheCpuBackend) {
  Slot slot(sockets_[0]);
  expectCudaMatchesCpu(slot, "resnet18-aoti", 1e-2);
}

// Four pods send distinct images at once; dynamic batching joins them, and
// each reply must be the result for its own image.
TEST_F(GpuAgent, BatchingAcrossFourSlotsGivesEachReplyItsOwnResult) {
  constexpr int kPerSlot = 12;
  std::vector<std::vector<std::vector<float>>> inputs(kSlots), want(kSlots), got(kSlots);
  Slot reference(sockets_[0]);
  for (int s = 0; s < kSlots; ++s)
    for (int i = 0; i < kPerSlot; ++i) {
      inputs[s].push_back(randomImages(1, 100 + s * kPerSlot + i));
      want[s].push_back(reference.images("resnet18-cpu", inputs[s].back()));
    }
  std::vector<std::thread> pods;
  for (int s = 0; s < kSlots; ++s)
    pods.emplace_back([&, s] {
      Slot slot(sockets_[s]);
      for (int i = 0; i < kPerSlot; ++i) got[s].push_back(slot.images("resnet18-fp32", inputs[s][i]));
    });
  for (auto& p : pods) p.join();
  for (int s = 0; s < kSlots; ++s)
    for (int i = 0; i < kPerSlot; ++i)
      EXPECT_LE(relativeError(got[s][i], want[s][i]), 1e-2) << "slot " << s << ", request " << i;
  // The batches the model ran, over every slot: some held more than one request.
  inference::ModelStatisticsRequest req;
  req.set_name("resnet18-fp32");
  int64_t executions = 0, inferences = 0;
  for (const auto& socket : sockets_) {
    Slot slot(socket);
    grpc::ClientContext ctx;
    inference::ModelStatisticsResponse resp;
    ASSERT_TRUE(slot.stub().ModelStatistics(&ctx, req, &resp).ok());
    for (const auto& m : resp.model_stats()) {
      executions += static_cast<int64_t>(m.execution_count());
      inferences += static_cast<int64_t>(m.inference_count());
    }
  }
  std::printf("[ measured ] %lld rows in %lld executions (summed over the slots' statistics)\n",
              static_cast<long long>(inferences), static_cast<long long>(executions));
}

// GPU 0's memory in use, in MiB, as the driver counts it (nvidia-smi); -1 when unknown.
long gpuMemoryUsedMiB() {
  FILE* p = ::popen("nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0 2>/dev/null", "r");
  if (!p) return -1;
  long mib = -1;
  if (std::fscanf(p, "%ld", &mib) != 1) mib = -1;
  ::pclose(p);
  return mib;
}

// hog allocates batch x 4 GiB on the GPU: batch 64 asks for 256 GiB.
// At 1 row it runs as a CUDA graph, whose memory pool keeps its 4 GiB: the
// out-of-memory error gives that back to the driver too (with the 4 GiB
// the allocator had cached from the eager runs), so the drop is about 8 GiB
// where the cache alone would give 4.
TEST_F(GpuAgent, ABatchTooLargeForTheGpuFailsAloneAndTheNextSucceeds) {
  Slot slot(sockets_[0]);
  auto hog = [&](int64_t rows, inference::ModelInferResponse* resp) {
    return slot.infer(request("hog", "x", {rows, 4}, std::vector<float>(static_cast<size_t>(rows * 4), 1.f)), resp);
  };
  inference::ModelInferResponse resp;
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(hog(1, &resp).ok());  // captured, then replayed
  const long before = gpuMemoryUsedMiB();
  grpc::Status s = hog(64, &resp);
  const long after = gpuMemoryUsedMiB();
  ASSERT_GE(before, 0) << "nvidia-smi cannot say how much GPU memory is used";
  std::printf("[ measured ] GPU memory used: %ld MiB before the out-of-memory batch, %ld MiB after\n", before, after);
  EXPECT_GE(before - after, 6 * 1024) << "the graph pool's 4 GiB went back to the driver";
  EXPECT_NE(log().find("gave back the memory of this worker's 1 CUDA graph(s)"), std::string::npos) << log();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_NE(s.error_message().find("out of memory"), std::string::npos) << s.error_message();
  EXPECT_NE(s.error_message().find("Tried to allocate 256.00 GiB"), std::string::npos) << s.error_message();
  std::printf("[ measured ] the answer: %s\n", s.error_message().c_str());
  s = hog(1, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  auto y = floatsOf(resp.raw_output_contents(0));
  ASSERT_EQ(y.size(), 4u);
  for (float v : y) EXPECT_GT(v, 1e9f);  // 1 + 2^30 ones
  EXPECT_EQ(slot.images("resnet18-fp32", randomImages(1, 3)).size(), 1000u);
}

// CUDA graphs are on by default on CUDA. A model that reads a GPU value on
// the host (host-sync) cannot be captured: it runs as usual and answers right,
// and each failed capture leaves the GPU allocator as it found it, so an
// out-of-memory batch after them still fails alone, RESOURCE_EXHAUSTED, and
// the next one runs. (The test models have one worker, so every request
// below runs on the thread whose captures failed.)
TEST_F(GpuAgent, AModelThatCannotBeCapturedRunsAsUsualAndLeavesTheAllocatorWorking) {
  Slot slot(sockets_[2]);
  inference::ModelInferResponse resp;
  auto addsOne = [&](int64_t rows) {
    std::vector<float> x(static_cast<size_t>(rows * 4));
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i) * 0.5f;
    grpc::Status s = slot.infer(request("host-sync", "x", {rows, 4}, x), &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    auto y = floatsOf(resp.raw_output_contents(0));
    ASSERT_EQ(y.size(), x.size());
    for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(y[i], x[i] + 1) << "row element " << i;
  };
  addsOne(1);
  addsOne(2);
  addsOne(1);
  grpc::Status tooLarge = slot.infer(request("hog", "x", {64, 4}, std::vector<float>(64 * 4, 1.f)), &resp);
  EXPECT_EQ(tooLarge.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << tooLarge.error_message();
  grpc::Status s = slot.infer(request("hog", "x", {1, 4}, std::vector<float>(4, 1.f)), &resp);
  EXPECT_TRUE(s.ok()) << s.error_message();
  addsOne(3);
  std::printf("[ measured ] host-sync answered at 1, 2, 1 and 3 rows; hog at 64 rows: code %d, %s\n",
              static_cast<int>(tooLarge.error_code()), tooLarge.error_message().c_str());
}

// The same request through pinned shared memory and through raw contents.
TEST_F(GpuAgent, APinnedSharedMemoryRoundTripEqualsTheRawPath) {
  Slot slot(sockets_[1]);
  constexpr int64_t kRows = 8;
  auto input = randomImages(kRows, 11);
  auto raw = slot.images("resnet18-fp16", input);
  ASSERT_EQ(raw.size(), static_cast<size_t>(kRows * 1000));

  fs::path shmDir = slot.dir() / "shm";
  std::string in = bytesOf(input);
  std::ofstream(shmDir / "in", std::ios::binary) << in;
  std::ofstream(shmDir / "out", std::ios::binary) << std::string(kRows * 1000 * 4, '\0');
  auto reg = [&](const std::string& name, const std::string& key, uint64_t size) {
    inference::SystemSharedMemoryRegisterRequest r;
    r.set_name(name);
    r.set_key(key);
    r.set_byte_size(size);
    inference::SystemSharedMemoryRegisterResponse resp;
    grpc::ClientContext ctx;
    return slot.stub().SystemSharedMemoryRegister(&ctx, r, &resp);
  };
  ASSERT_TRUE(reg("images", "in", in.size()).ok());
  ASSERT_TRUE(reg("scores", "out", kRows * 1000 * 4).ok());
  inference::ModelInferRequest req;
  req.set_model_name("resnet18-fp16");
  auto* i = req.add_inputs();
  i->set_name("input");
  i->set_datatype("FP32");
  for (int64_t d : {kRows, int64_t{3}, int64_t{224}, int64_t{224}}) i->add_shape(d);
  (*i->mutable_parameters())["shared_memory_region"].set_string_param("images");
  (*i->mutable_parameters())["shared_memory_byte_size"].set_int64_param(static_cast<int64_t>(in.size()));
  auto* o = req.add_outputs();
  o->set_name("output");
  (*o->mutable_parameters())["shared_memory_region"].set_string_param("scores");
  (*o->mutable_parameters())["shared_memory_byte_size"].set_int64_param(kRows * 1000 * 4);
  inference::ModelInferResponse resp;
  grpc::Status s = slot.infer(req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  std::ifstream f(shmDir / "out", std::ios::binary);
  std::string outBytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_LE(relativeError(floatsOf(outBytes), raw), 1e-3) << "shared memory against raw contents";
  std::string agentLog = log();
  EXPECT_NE(agentLog.find("'images'"), std::string::npos);
  EXPECT_NE(agentLog.find("pinned for the device"), std::string::npos)
      << "the agent did not pin the region; its log:\n" << agentLog.substr(agentLog.size() > 4000 ? agentLog.size() - 4000 : 0);
  // The GPU wrote the scores into the pod's pinned range itself (run_into), with no copy in the agent.
  EXPECT_NE(agentLog.find("writes outputs straight into the pod's pinned shared memory (first: model resnet18-fp16"),
            std::string::npos)
      << "the output was copied by the agent, not written in place; its log:\n"
      << agentLog.substr(agentLog.size() > 4000 ? agentLog.size() - 4000 : 0);
}

TEST_F(GpuAgent, AfterARestartEverySlotIsReadyAndServes) {
  stop();
  start();
  ASSERT_GE(sockets_.size(), static_cast<size_t>(kSlots));
  for (const auto& socket : sockets_) {
    Slot slot(socket);
    EXPECT_TRUE(slot.ready()) << socket;
    EXPECT_EQ(slot.images("resnet18-fp16", randomImages(1, 5)).size(), 1000u) << socket;
  }
}

// Each GPU's slots run on that GPU: the model's platform names the device's
// PCI address, which is in the slot's path.
TEST_F(GpuAgent, EachGpusSlotsRunOnThatGpu) {
  for (const auto& socket : sockets_) {
    std::string id = fs::path(socket).parent_path().parent_path().filename().string();  // 0000-00-06.0
    std::string bus = id;
    std::replace(bus.begin(), bus.end(), '-', ':');
    Slot slot(socket);
    inference::ModelMetadataRequest req;
    req.set_name("resnet18-fp16");
    inference::ModelMetadataResponse resp;
    grpc::ClientContext ctx;
    ASSERT_TRUE(slot.stub().ModelMetadata(&ctx, req, &resp).ok());
    EXPECT_NE(resp.platform().find("(" + bus + ")"), std::string::npos)
        << socket << ": platform '" << resp.platform() << "' does not name " << bus;
    std::printf("[ measured ] %s: %s\n", id.c_str(), resp.platform().c_str());
  }
}

// The plugin on the GPU machine's real sysfs, next to the agent, with the
// kubelet stand-in: it advertises every slot of the GPU, marks them
// Unhealthy while the agent is down and Healthy again once it is back, and
// a pod's Allocate gets only its slot: no device node, no NVIDIA_VISIBLE_DEVICES.
TEST_F(GpuAgent, ThePluginAdvertisesTheSlotsHealthyAgainAfterAnAgentRestartAndAllocatesOnlyTheSocket) {
  const fs::path kubeletDir = dir_ / "kubelet", cdiDir = dir_ / "cdi";
  fs::create_directories(kubeletDir / "device-plugins");
  fs::create_directories(cdiDir);
  kubeaccel::testing::KubeletStandin kubelet((kubeletDir / "device-plugins").string());
  kubelet.start();
  pid_t plugin = ::fork();
  if (plugin == 0) {
    int fd = ::open((dir_ / "plugin.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    std::string bin = bundle() + "/bin/kubeaccel-plugin";
    ::execl(bin.c_str(), bin.c_str(), "--config", (dir_ / "config.json").c_str(), "--kubelet-dir", kubeletDir.c_str(),
            "--agent-dir", (dir_ / "agent").c_str(), "--cdi-dir", cdiDir.c_str(), "--log-level", "debug", nullptr);
    ::_exit(127);
  }
  struct Reaper {  // stops the plugin when an assertion ends the test early
    pid_t pid;
    ~Reaper() {
      if (pid <= 0) return;
      ::kill(pid, SIGTERM);
      ::waitpid(pid, nullptr, 0);
    }
  } reaper{plugin};
  auto pluginLog = [&] {
    std::ifstream f(dir_ / "plugin.log");
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  };
  const std::string resource = "kubeaccel.io/nvidia-gpu";
  auto healthy = [&](size_t want) {
    return [&, want](const std::map<std::string, kubeaccel::testing::KubeletStandin::Resource>& r) {
      auto it = r.find(resource);
      if (it == r.end() || !it->second.streamOpen) return false;
      size_t n = static_cast<size_t>(std::count_if(it->second.devices.begin(), it->second.devices.end(),
                                                   [](const auto& d) { return d.health == "Healthy"; }));
      return it->second.devices.size() == sockets_.size() && n == want;
    };
  };
  EXPECT_TRUE(kubelet.waitFor(healthy(sockets_.size()), 60s)) << "every slot Healthy at first\n" << pluginLog();
  stop();
  EXPECT_TRUE(kubelet.waitFor(healthy(0), 30s)) << "no slot Healthy while the agent is down\n" << pluginLog();
  start();
  EXPECT_TRUE(kubelet.waitFor(healthy(sockets_.size()), 60s)) << "every slot Healthy again\n" << pluginLog();

  auto devices = kubelet.resources()[resource].devices;
  ASSERT_FALSE(devices.empty()) << pluginLog();
  v1beta1::AllocateResponse resp;
  grpc::Status s = kubelet.allocate(resource, {devices[0].id}, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message() << "\n" << pluginLog();
  ASSERT_EQ(resp.container_responses_size(), 1);
  const auto& c = resp.container_responses(0);
  EXPECT_EQ(c.devices_size(), 0) << "no device node for the pod";
  for (const auto& [k, v] : c.envs()) EXPECT_EQ(k.find("NVIDIA"), std::string::npos) << k << "=" << v;
  std::string slotDir;
  for (const auto& m : c.mounts())
    if (m.container_path() == "/run/kubeaccel") slotDir = m.host_path();
  ASSERT_FALSE(slotDir.empty()) << resp.DebugString();
  size_t specs = 0;
  for (const auto& e : fs::directory_iterator(cdiDir)) {  // the slots' CDI spec names no GPU node either
    std::ifstream f(e.path());
    std::stringstream spec;
    spec << f.rdbuf();
    EXPECT_EQ(spec.str().find("/dev/nvidia"), std::string::npos) << e.path() << ":\n" << spec.str();
    ++specs;
  }
  EXPECT_GE(specs, 1u) << "the plugin wrote no CDI spec to " << cdiDir;
  EXPECT_EQ(c.cdi_devices_size(), 1) << resp.DebugString();
  Slot pod(slotDir + "/inference.sock");
  EXPECT_EQ(pod.images("resnet18-fp16", randomImages(1, 9)).size(), 1000u) << "the allocated slot serves";
  std::printf("[ measured ] %s: %zu slots advertised; Allocate of %s: %d mounts, %d envs, %d device nodes, %d CDI "
              "names\n",
              resource.c_str(), devices.size(), devices[0].id.c_str(), c.mounts_size(), c.envs_size(),
              c.devices_size(), c.cdi_devices_size());
  ::kill(plugin, SIGTERM);
  int status = 0;
  ::waitpid(plugin, &status, 0);
  reaper.pid = -1;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << pluginLog();
  kubelet.stop();
}

}  // namespace
