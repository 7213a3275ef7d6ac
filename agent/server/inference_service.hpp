#pragma once
// KServe v2 / Open Inference Protocol for one slot (gRPC callback API).

#include <atomic>
#include <mutex>
#include <map>
#include <set>

#include "inference/grpc_service.grpc.pb.h"
#include "server/decoding_service.hpp"
#include "server/slot_context.hpp"
#include "shm/shm_registry.hpp"

namespace kubeaccel::agent {

// Every method decodes its request itself (DecodingService), so that a
// request that does not decode is answered INVALID_ARGUMENT saying why.
class InferenceService final : public DecodingService<inference::GRPCInferenceService> {
 public:
  explicit InferenceService(SlotContext ctx);

  // Ends every ModelStreamInfer stream once its requests are answered (before
  // the server shuts down, so an idle stream does not hold shutdown up).
  void closeStreams();

  // ServerReady: the device's backend is built in and at least one model is
  // served, i.e. this slot can serve an inference (KServe v2: "ready to
  // receive and process inference requests").
  bool serverReady() const;
  // The slot changes hands: drops every shared-memory region and the slot's
  // statistics, and ends the last pod's streams (not the plugin's health
  // watches). Returns how many regions were dropped.
  size_t handOver();

  // Call after the repository changed: when ServerReady's answer changed,
  // the plugin's health watches on this slot (ModelStreamInfer streams with
  // kHealthWatchMetadata) are ended, so the plugin asks ServerReady again.
  void readinessMayHaveChanged();
  static constexpr const char* kHealthWatchMetadata = "kubeaccel-health-watch";
  // What a slot answers to RepositoryModelLoad and RepositoryModelUnload.
  static constexpr const char* kAdminOnly =
      "repository changes are an admin operation: they are refused on a slot's socket; use the agent's admin "
      "socket, <agent-dir>/admin.sock (kubeaccel models load|unload NAME)";

 private:
  using Status = grpc::Status;
  Status ServerLive(const inference::ServerLiveRequest&, inference::ServerLiveResponse*);
  Status ServerReady(const inference::ServerReadyRequest&, inference::ServerReadyResponse*);
  Status ServerMetadata(const inference::ServerMetadataRequest&, inference::ServerMetadataResponse*);
  Status ModelReady(const inference::ModelReadyRequest&, inference::ModelReadyResponse*);
  Status ModelMetadata(const inference::ModelMetadataRequest&, inference::ModelMetadataResponse*);
  void ModelInfer(Ctx*, const inference::ModelInferRequest&, inference::ModelInferResponse*, Done);
  // A stream of inference requests, answered in order of completion. Also
  // what the plugin holds open to learn at once when the agent goes away.
  RawStream* ModelStreamInfer(Ctx*);
  Status ModelStatistics(const inference::ModelStatisticsRequest&, inference::ModelStatisticsResponse*);
  Status RepositoryIndex(const inference::RepositoryIndexRequest&, inference::RepositoryIndexResponse*);
  Status RepositoryModelLoad(const inference::RepositoryModelLoadRequest&, inference::RepositoryModelLoadResponse*);
  Status RepositoryModelUnload(const inference::RepositoryModelUnloadRequest&,
                               inference::RepositoryModelUnloadResponse*);
  Status SystemSharedMemoryStatus(const inference::SystemSharedMemoryStatusRequest&,
                                  inference::SystemSharedMemoryStatusResponse*);
  Status SystemSharedMemoryRegister(const inference::SystemSharedMemoryRegisterRequest&,
                                    inference::SystemSharedMemoryRegisterResponse*);
  Status SystemSharedMemoryUnregister(const inference::SystemSharedMemoryUnregisterRequest&,
                                      inference::SystemSharedMemoryUnregisterResponse*);

  // The ready model `name` (and `version`, if given), or why not.
  grpc::Status findModel(const std::string& name, const std::string& version,
                         std::shared_ptr<const ServedModel>* out) const;

  class Stream;
  // Runs one request through validation and the scheduler; `done` gets the
  // outcome exactly once (maybe before infer returns). `cancelled` tells
  // whether the client has given up (the job is then dropped, not run).
  void infer(const inference::ModelInferRequest& req, inference::ModelInferResponse* resp,
             InferJob::Clock::time_point deadline, std::function<bool()> cancelled,
             std::function<void(grpc::Status)> done);

  // This slot's figures for `model` (ModelStatistics on the slot).
  std::shared_ptr<agent::ModelStatistics> slotStats(const std::string& model);

  SlotContext ctx_;
  ShmRegistry shm_;
  std::mutex statsMu_;
  std::map<std::string, std::shared_ptr<agent::ModelStatistics>> stats_;
  // Request bytes taken and not yet answered. Shared with the jobs: a worker
  // destroys a job after its answer, which may be after this service is gone
  // (at shutdown the answer is what lets the server stop).
  std::shared_ptr<std::atomic<uint64_t>> inflightBytes_ = std::make_shared<std::atomic<uint64_t>>(0);
  std::mutex streamsMu_;
  std::set<Stream*> streams_;
  std::atomic<bool> lastReady_{false};
  std::atomic<bool> loggedInPlace_{false};  // the first output an engine wrote into a pod's range is logged
};

}  // namespace kubeaccel::agent
