#pragma once
// A real kubeaccel-agent for a benchmark: one agent-mode class that matches
// this machine's first PCI device (real sysfs, no umockdev), a temporary agent
// directory, the given model repository and backend. Stopped with SIGTERM
// when the object goes; a slow or unclean exit is reported on stderr.

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace kubeaccel::bench {

// The first PCI device under /sys/bus/pci/devices: address, vendor and device
// IDs (lower-case hex). Throws when there is none.
struct PciDevice {
  std::string address, vendor, device;
};
PciDevice firstPciDevice();

struct AgentSetup {
  std::string binary;      // kubeaccel-agent
  std::string backendDir;  // --backend-dir
  std::string models;      // --models
  std::string log;         // the agent's stdout and stderr
  std::string className = "bench-cpu";
  std::string backend = "opencv-cpu";
  int slots = 2;
  std::vector<std::string> extraArgs;  // e.g. {"--metrics-address", "127.0.0.1:0"}
  std::vector<std::string> env;        // "NAME=VALUE" added to (or replacing in) this process's environment
  std::chrono::seconds startTimeout{30};  // until every slot's socket is there
};

class AgentProcess {
 public:
  explicit AgentProcess(AgentSetup setup);  // throws with the agent's log when it does not serve
  ~AgentProcess();
  AgentProcess(const AgentProcess&) = delete;
  AgentProcess& operator=(const AgentProcess&) = delete;

  // The slot's socket path (a plain path, no unix:// prefix).
  std::string socket(int slot) const;
  const PciDevice& device() const { return device_; }
  pid_t pid() const { return pid_; }
  // The port of its /metrics endpoint, from its log line; -1 when it serves
  // none (no --metrics-address).
  int metricsPort() const;

 private:
  AgentSetup setup_;
  std::string dir_, deviceDir_;
  PciDevice device_;
  pid_t pid_ = -1;
};

// The 1-minute load average: how busy the machine was (its CPUs are shared).
std::string loadAverage();

}  // namespace kubeaccel::bench
