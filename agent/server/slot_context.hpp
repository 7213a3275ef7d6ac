#pragma once
// What one slot's service knows: whose slot it is and the device it runs on.

#include <functional>
#include <string>

#include "repository/model_repository.hpp"
#include "scheduler/device_scheduler.hpp"
#include "shm/shm_registry.hpp"

namespace kubeaccel::agent {

// Told of a slot's inference requests (metrics). Either may be empty.
struct InferObserver {
  // A request for `model`, a served model, was taken: it is answered later,
  // and `answered` is told then.
  std::function<void(const std::string& model)> received;
  // A request answered: its status code (CANCELLED: the client gave up), its
  // time in the agent, and the run's timing.
  std::function<void(const std::string& model, grpc::StatusCode code, std::chrono::nanoseconds total,
                     const JobTiming& timing)>
      answered;
};

struct SlotContext {
  std::string resource;  // "kubeaccel.io/movidius-ncs2"
  std::string deviceId;
  std::string repositoryName;  // the device's model repository: "<class>/<device-id>"
  int slot = 0;
  std::string slotDir;
  std::string backend;   // the class's backend name
  std::string platform;  // what it runs on, or "" when the backend is unavailable
  std::string unavailableReason;
  ModelRepository* repository = nullptr;
  DeviceScheduler* scheduler = nullptr;
  InferObserver observer;
  int maxMessageBytes = 64 << 20;  // the slot server's limit, for answers too
  // Per-tenant bounds (docs/operations.md, "Per-tenant bounds").
  size_t maxStreams = 16;           // ModelStreamInfer streams open at once
  size_t maxStreamBacklog = 8;      // a stream's requests in flight plus answers not yet written
  uint64_t maxInflightBytes = 256 << 20;  // request bytes taken and not yet answered
  size_t maxRegions = ShmRegistry::kMaxRegions;
  uint64_t maxRegionBytes = ShmRegistry::kMaxMappedBytes;
  // Pins the slot's shared-memory regions for the device's engine; may be null.
  HostMemoryPinner* pinner = nullptr;

  bool ready() const { return unavailableReason.empty(); }
  std::string slotId() const { return deviceId + "-s" + std::to_string(slot); }
};

}  // namespace kubeaccel::agent
