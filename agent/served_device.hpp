#pragma once
// One agent-mode device as the agent serves it: its backend, the models loaded
// for it, its scheduler and one server per slot.

#include <chrono>
#include <memory>
#include <thread>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "config/config.hpp"
#include "discovery/device.hpp"
#include "repository/model_repository.hpp"
#include "scheduler/device_scheduler.hpp"
#include "server/slot_server.hpp"

namespace kubeaccel::agent {

struct AgentOptions {
  std::string agentDir = "/var/lib/kubeaccel/agent";
  std::string modelsDir;
  std::string backendDir = "/usr/lib/kubeaccel/backends";  // libkubeaccel_backend_<name>.so
  int maxMessageBytes = 64 << 20;
  size_t maxQueued = 256;  // per slot
  // Gives each slot its observer (metrics); may be empty.
  std::function<InferObserver(const std::string& resource, const std::string& slotId)> observerFor;
};

class ServedDevice {
 public:
  ServedDevice(const Config& config, const DeviceClass& cls, const Device& device, const AgentOptions& options);
  ~ServedDevice();

  // How long queued requests may still run once the agent stops or the
  // device goes; those left are then answered UNAVAILABLE. Kept well under
  // Kubernetes' default termination grace (30 s): the agent exits within
  // about this plus the run in progress.
  static constexpr std::chrono::milliseconds kShutdownGrace{2000};

  // Starts stopping: no new calls on any slot, streams end once answered, and
  // queued requests run until `graceEnd`, then get UNAVAILABLE with `why`.
  // Returns at once; the destructor (or retire()) waits for the rest. Lets
  // the agent stop all its devices at the same time.
  void beginShutdown(std::chrono::steady_clock::time_point graceEnd, const std::string& why);
  // Removes the slot directories too (the device is gone for good).
  void retire();
  std::string deviceDir() const { return deviceDir_; }
  // Every slot's socket file is in place.
  bool intact() const;

 private:
  std::string deviceDir_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<ModelRepository> repository_;
  std::unique_ptr<DeviceScheduler> scheduler_;
  std::vector<std::unique_ptr<SlotServer>> slots_;
  std::vector<std::thread> stopping_;  // one per slot server shutting down, and the drain
  void finishShutdown();
};

}  // namespace kubeaccel::agent
