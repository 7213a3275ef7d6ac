#include "agent_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <stdexcept>
#include <thread>

#include "util/read_file.hpp"

extern char** environ;

namespace kubeaccel::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

std::string text(const std::string& path) { return kubeaccel::readFile(path).value_or(""); }

// "0x8086\n" -> "8086"
std::string hexId(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  return s.rfind("0x", 0) == 0 ? s.substr(2) : s;
}

}  // namespace

PciDevice firstPciDevice() {
  std::vector<fs::path> all;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/sys/bus/pci/devices", ec)) all.push_back(e.path());
  std::sort(all.begin(), all.end());
  for (const auto& p : all) {
    PciDevice d{p.filename().string(), hexId(text(p / "vendor")), hexId(text(p / "device"))};
    if (d.vendor.size() == 4 && d.device.size() == 4) return d;
  }
  throw std::runtime_error("no PCI device under /sys/bus/pci/devices for the agent's class to match");
}

AgentProcess::AgentProcess(AgentSetup setup) : setup_(std::move(setup)) {
  char tmpl[] = "/tmp/kubeaccel-bench-agent-XXXXXX";
  if (!::mkdtemp(tmpl)) throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
  dir_ = tmpl;
  device_ = firstPciDevice();
  std::string config = dir_ + "/config.json";
  std::ofstream(config) << R"({"builtin": false, "classes": [{"name": ")" << setup_.className
                        << R"(", "mode": "agent", "slots": )" << setup_.slots << R"(, "backend": ")" << setup_.backend
                        << R"(", "match": [{"subsystem": "pci", "vendor": ")" << device_.vendor << R"(", "device": ")"
                        << device_.device << R"("}]}]})";
  std::vector<std::string> args = {setup_.binary, "--config",      config,
                                   "--agent-dir", dir_ + "/agent", "--models",
                                   setup_.models, "--backend-dir", setup_.backendDir};
  args.insert(args.end(), setup_.extraArgs.begin(), setup_.extraArgs.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, setup_.log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  std::vector<std::string> envText;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    bool replaced = false;
    for (const auto& mine : setup_.env)
      replaced |= kv.compare(0, kv.find('=') + 1, mine, 0, mine.find('=') + 1) == 0;
    if (!replaced) envText.push_back(kv);
  }
  envText.insert(envText.end(), setup_.env.begin(), setup_.env.end());
  std::vector<char*> envp;
  for (auto& e : envText) envp.push_back(e.data());
  envp.push_back(nullptr);
  int rc = ::posix_spawn(&pid_, setup_.binary.c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::runtime_error("cannot start " + setup_.binary + ": " + std::strerror(rc));

  // Its slot sockets: <agent-dir>/<class>/<device-id>/s<k>/inference.sock.
  const std::string last = "s" + std::to_string(setup_.slots - 1);
  auto deadline = Clock::now() + setup_.startTimeout;
  for (;;) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir_ + "/agent/" + setup_.className, ec))
      if (fs::exists(e.path() / last / "inference.sock")) deviceDir_ = e.path();
    if (!deviceDir_.empty()) break;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("the agent exited before serving; its log (" + setup_.log + "):\n" + text(setup_.log));
    }
    if (Clock::now() > deadline)
      throw std::runtime_error("the agent serves no slot after " + std::to_string(setup_.startTimeout.count()) +
                               " s; see " + setup_.log);
    std::this_thread::sleep_for(10ms);
  }
}

AgentProcess::~AgentProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      std::fprintf(stderr, "bench: the agent did not exit cleanly on SIGTERM (status %d); see %s\n", status,
                   setup_.log.c_str());
  }
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

std::string AgentProcess::socket(int slot) const {
  return deviceDir_ + "/s" + std::to_string(slot) + "/inference.sock";
}

int AgentProcess::metricsPort() const {
  // The agent logs "metrics on http://HOST:PORT/metrics" once it listens.
  static const std::regex line("metrics on http://[^:/]+:([0-9]+)/metrics");
  for (auto deadline = Clock::now() + 5s; Clock::now() < deadline; std::this_thread::sleep_for(20ms)) {
    std::smatch m;
    std::string log = text(setup_.log);
    if (std::regex_search(log, m, line)) return std::stoi(m[1]);
  }
  return -1;
}

std::string loadAverage() {
  std::string all = text("/proc/loadavg");
  return all.substr(0, all.find(' '));
}

}  // namespace kubeaccel::bench
