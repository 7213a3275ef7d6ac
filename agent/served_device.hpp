#pragma once
// One agent-mode device as the agent serves it: its backend, the models loaded
// for it, its scheduler and one server per slot.

#include <chrono>
#include <memory>
#include <mutex>
#include <condition_variable>
#include <utility>
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

// What a served device reports every watchdog round (ServedDevice::kSlotCheckInterval),
// for metrics: which device it is and the models it serves now.
struct DeviceReport {
  std::string resource;  // "kubeaccel.io/nvidia-gpu"
  std::string deviceId;
  std::string pciBusId;  // "0000:3b:00.0", or "" for a device without one
  std::vector<std::string> readyModels;
};

struct AgentOptions {
  std::string agentDir = "/var/lib/kubeaccel/agent";
  std::string modelsDir;
  std::string backendDir = "/usr/lib/kubeaccel/backends";  // libkubeaccel_backend_<name>.so
  int maxMessageBytes = 64 << 20;
  size_t maxQueued = 256;  // per slot
  size_t maxConnections = 64;  // per slot (SlotListener)
  size_t maxStreams = 16;      // per slot
  size_t maxStreamBacklog = 8; // per stream
  uint64_t maxInflightBytes = 256 << 20;  // per slot
  size_t maxRegions = ShmRegistry::kMaxRegions;          // per slot
  uint64_t maxRegionBytes = ShmRegistry::kMaxMappedBytes; // per slot
  // Gives each slot its observer (metrics); may be empty.
  std::function<InferObserver(const std::string& resource, const std::string& slotId)> observerFor;
  // Told of each device every watchdog round and once more, with no models,
  // when it stops being served; may be empty.
  std::function<void(const DeviceReport&, bool gone)> reportDevice;
};

class ServedDevice {
 public:
  // Loads the device's backend and models; serves nothing yet.
  ServedDevice(const Config& config, const DeviceClass& cls, const Device& device, const AgentOptions& options);
  ~ServedDevice();
  // Starts the slot servers and the watchdog. Separate from construction so
  // that the agent can make the device known to its admin socket first: a
  // plugin that sees a slot answer may at once ask the admin socket to hand
  // the slot over.
  void serve();

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
  // "<class>/<device-id>".
  const std::string& key() const { return key_; }
  ModelRepository& repository() { return *repository_; }
  // Slot k changes hands (admin HandOverSlot, from the plugin's Allocate):
  // everything the last pod left goes. Every entry of the slot directory but
  // the socket is moved out of the pod's reach (into <device-dir>/.trash/,
  // then deleted as far as the agent may) and a fresh shm/ made; the slot's
  // regions, statistics and streams are dropped. Throws std::runtime_error
  // naming what could not be removed: the slot must not go to a new pod then.
  struct HandOver {
    int entriesRemoved = 0, regionsDropped = 0;
  };
  HandOver handOverSlot(int k);

  // (slot ID, socket path) of each slot served now.
  std::vector<std::pair<std::string, std::string>> servedSockets() const;
  // How often the watchdog checks the slots (checkSlots).
  static constexpr std::chrono::milliseconds kSlotCheckInterval{2000};
  // One watchdog round (the device's watchdog thread runs it every
  // kSlotCheckInterval): a slot not served is tried again (its tenant or an
  // admin may have cleaned up), and a slot whose socket did not answer a new
  // connection twice in a row is served afresh: new listener, new server.
  void checkSlots();
  // "<slot-id>: <reason>" for each slot that cannot be served (its tenant
  // left its directory unusable); empty when every slot is served.
  std::vector<std::string> unservedSlots() const;

 private:
  std::string deviceDir_;
  std::string key_;
  DeviceReport report_;  // readyModels filled at each report
  std::function<void(const DeviceReport&, bool)> reportDevice_;
  void report(bool gone);
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<ModelRepository> repository_;
  std::unique_ptr<DeviceScheduler> scheduler_;
  int maxMessageBytes_;
  size_t maxConnections_;
  std::vector<SlotContext> contexts_;                // per slot, to start it again
  mutable std::mutex slotsMu_;                        // slots_ and problems_
  std::vector<std::unique_ptr<SlotServer>> slots_;    // null: not served (problems_ says why)
  std::vector<std::string> problems_;
  // Starts slot k's server; false (logged, problems_[k] set) when it cannot.
  bool startSlot(size_t k);
  std::vector<std::thread> stopping_;  // one per slot server shutting down, and the drain
  std::vector<int> unanswered_;        // per slot: watchdog rounds in a row without an answer
  std::mutex lifecycleMu_;  // one slot restart or hand-over at a time
  std::mutex watchdogMu_;
  std::condition_variable watchdogWake_;
  bool watchdogStop_ = false;
  std::thread watchdog_;
  void stopWatchdog();
  void finishShutdown();
};

}  // namespace kubeaccel::agent
