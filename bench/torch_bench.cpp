// The torch backend, measured side by side in one run on this machine:
//   1. ResNet-50, batch 1, through a slot socket: torch backend (TorchScript)
//      vs opencv-cpu (the same weights exported to ONNX). Target: torch <= 0.5x.
//   2. SqueezeNet 1.1, batch 1: through the socket (torch backend) vs libtorch
//      in this process on the same file. Target: <= 1.05x.
// Two agents run at once, one per backend, on the machine's first PCI device
// (real sysfs). Modes alternate request by request, so load changes on the
// shared machine hit both sides alike. Medians; CSV rows on stdout and in --csv.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <torch/script.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "inference_client.hpp"
#include "util/args.hpp"
#include "util/read_file.hpp"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

std::string firstPciMatch() {
  std::vector<fs::path> all;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/sys/bus/pci/devices", ec)) all.push_back(e.path());
  std::sort(all.begin(), all.end());
  auto hex = [](fs::path p) {
    std::string s = kubeaccel::readFile(p.string()).value_or("");
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
    return s.rfind("0x", 0) == 0 ? s.substr(2) : s;
  };
  for (const auto& p : all) {
    std::string v = hex(p / "vendor"), d = hex(p / "device");
    if (v.size() == 4 && d.size() == 4) return R"({"subsystem": "pci", "vendor": ")" + v + R"(", "device": ")" + d + "\"}";
  }
  throw std::runtime_error("no PCI device under /sys/bus/pci/devices for the agent's class to match");
}

// A real kubeaccel-agent serving one class with `backend` over `models`.
class Agent {
 public:
  Agent(const std::string& backend, const std::string& models, const std::string& log) {
    char tmpl[] = "/tmp/kubeaccel-torch-bench-XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    std::ofstream(dir_ + "/config.json") << R"({"builtin": false, "classes": [{"name": "bench", "mode": "agent",)"
                                         << R"( "slots": 1, "backend": ")" << backend << R"(", "match": [)"
                                         << firstPciMatch() << "]}]}";
    std::vector<std::string> args = {KUBEACCEL_AGENT_BIN, "--config", dir_ + "/config.json", "--agent-dir",
                                     dir_ + "/agent", "--models", models, "--backend-dir", KUBEACCEL_BACKENDS_DIR};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
    int rc = ::posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) throw std::runtime_error("cannot start the agent");
    auto deadline = Clock::now() + 120s;  // ResNet-50 loads, dry-runs and warms up
    while (socket_.empty()) {
      std::error_code ec;
      for (const auto& e : fs::directory_iterator(dir_ + "/agent/bench", ec))
        if (fs::exists(e.path() / "s0" / "inference.sock")) socket_ = (e.path() / "s0" / "inference.sock").string();
      if (Clock::now() > deadline) throw std::runtime_error("the agent serves no slot; see " + log);
      std::this_thread::sleep_for(20ms);
    }
  }
  ~Agent() {
    ::kill(pid_, SIGTERM);
    int st = 0;
    ::waitpid(pid_, &st, 0);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string target() const { return "unix://" + socket_; }

 private:
  std::string dir_, socket_;
  pid_t pid_ = -1;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

template <class F>
double timeUs(F&& f) {
  auto t0 = Clock::now();
  f();
  return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
}

void infer(kubeaccel::InferenceClient& c, const std::string& model, const std::vector<kubeaccel::ClientTensor>& in) {
  std::vector<kubeaccel::ClientTensor> out;
  grpc::Status s = c.infer(model, in, &out);
  if (!s.ok()) throw std::runtime_error(model + ": " + s.error_message());
}

}  // namespace

int main(int argc, char** argv) {
  try {
    kubeaccel::Args args(argc, argv, 1, {"requests", "csv", "logs"}, {});
    int n = std::stoi(args.get("requests", "40"));
    std::string logs = args.get("logs", "/tmp");
    std::string csv = args.get("csv", "");
    Agent torchAgent("torch", KUBEACCEL_TORCH_MODELS_DIR, logs + "/torch-bench-agent-torch.log");
    Agent cvAgent("opencv-cpu", KUBEACCEL_ONNX_BENCH_MODELS_DIR, logs + "/torch-bench-agent-opencv.log");
    kubeaccel::InferenceClient tc(torchAgent.target(), 60s), cc(cvAgent.target(), 60s);
    inference::ModelMetadataResponse meta;
    if (!tc.metadata("resnet50", &meta).ok()) throw std::runtime_error("torch agent: no resnet50");
    auto image = kubeaccel::InferenceClient::randomInputs(meta, 1);
    if (!tc.metadata("squeezenet", &meta).ok()) throw std::runtime_error("torch agent: no squeezenet");
    auto squeezeIn = kubeaccel::InferenceClient::randomInputs(meta, 1);

    // In-process libtorch on the same file, as the backend runs it.
    torch::jit::Module squeeze = torch::jit::load(std::string(KUBEACCEL_TORCH_MODELS_DIR) + "/squeezenet/1/model.pt");
    squeeze.eval();
    auto inProcess = [&] {
      c10::InferenceMode guard;
      at::Tensor t = torch::from_blob(squeezeIn[0].bytes.data(), squeezeIn[0].shape, torch::kFloat).clone();
      auto out = squeeze.forward({t}).toTensor().contiguous();
      volatile float sink = out.data_ptr<float>()[0];
      (void)sink;
    };
    for (int i = 0; i < 3; ++i) {  // warm-up on every side
      infer(tc, "resnet50", image);
      infer(cc, "resnet50", image);
      infer(tc, "squeezenet", squeezeIn);
      inProcess();
    }
    std::vector<double> r50torch, r50cv, sqSocket, sqInProcess;
    for (int i = 0; i < n; ++i) {
      r50torch.push_back(timeUs([&] { infer(tc, "resnet50", image); }));
      r50cv.push_back(timeUs([&] { infer(cc, "resnet50", image); }));
    }
    for (int i = 0; i < n * 5; ++i) {
      if (i % 2 == 0) {
        sqSocket.push_back(timeUs([&] { infer(tc, "squeezenet", squeezeIn); }));
        sqInProcess.push_back(timeUs(inProcess));
      } else {
        sqInProcess.push_back(timeUs(inProcess));
        sqSocket.push_back(timeUs([&] { infer(tc, "squeezenet", squeezeIn); }));
      }
    }
    double a = median(r50torch), b = median(r50cv), c = median(sqSocket), d = median(sqInProcess);
    std::ostringstream out;
    out << "figure,side,median_ms,ratio,target\n";
    out << "resnet50_b1_socket,torch," << a / 1e3 << "," << a / b << ",<=0.5\n";
    out << "resnet50_b1_socket,opencv-cpu," << b / 1e3 << ",1,\n";
    out << "squeezenet_b1,torch_socket," << c / 1e3 << "," << c / d << ",<=1.05\n";
    out << "squeezenet_b1,libtorch_in_process," << d / 1e3 << ",1,\n";
    std::cout << out.str();
    std::cout << "# libtorch threads in this process: " << at::get_num_threads() << "; requests per side: " << n
              << " (ResNet-50), " << n * 5 << " (SqueezeNet)\n";
    std::cout << "# ResNet-50 torch/opencv-cpu: " << a / b << " (target <= 0.5): " << (a / b <= 0.5 ? "met" : "MISSED")
              << "; SqueezeNet socket/in-process: " << c / d << " (target <= 1.05): " << (c / d <= 1.05 ? "met" : "MISSED")
              << "\n";
    if (!csv.empty()) std::ofstream(csv) << out.str();
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "torch_bench: " << e.what() << "\n";
    return 1;
  }
}
