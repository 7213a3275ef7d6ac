#pragma once
// KServe v2 / Open Inference Protocol for one slot (gRPC callback API).

#include <atomic>
#include <mutex>
#include <map>
#include <set>

#include "inference/grpc_service.grpc.pb.h"
#include "server/slot_context.hpp"
#include "shm/shm_registry.hpp"

namespace kubeaccel::agent {

// ModelInfer and ModelStreamInfer take raw bytes and decode them here, so an
// undecodable request is answered INVALID_ARGUMENT with the reason.
// (CallbackService with those two methods raw.)
using G = inference::GRPCInferenceService;
using InferenceServiceBase = G::WithCallbackMethod_ServerLive<G::WithCallbackMethod_ServerReady<
    G::WithCallbackMethod_ModelReady<G::WithCallbackMethod_ServerMetadata<G::WithCallbackMethod_ModelMetadata<
        G::WithRawCallbackMethod_ModelInfer<G::WithRawCallbackMethod_ModelStreamInfer<
            G::WithCallbackMethod_ModelStatistics<G::WithCallbackMethod_RepositoryIndex<
                G::WithCallbackMethod_RepositoryModelLoad<G::WithCallbackMethod_RepositoryModelUnload<
                    G::WithCallbackMethod_SystemSharedMemoryStatus<G::WithCallbackMethod_SystemSharedMemoryRegister<
                        G::WithCallbackMethod_SystemSharedMemoryUnregister<G::Service>>>>>>>>>>>>>>;

class InferenceService final : public InferenceServiceBase {
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

  using Ctx = grpc::CallbackServerContext;
  using Reactor = grpc::ServerUnaryReactor;
  Reactor* ServerLive(Ctx*, const inference::ServerLiveRequest*, inference::ServerLiveResponse*) override;
  Reactor* ServerReady(Ctx*, const inference::ServerReadyRequest*, inference::ServerReadyResponse*) override;
  Reactor* ServerMetadata(Ctx*, const inference::ServerMetadataRequest*, inference::ServerMetadataResponse*) override;
  Reactor* ModelReady(Ctx*, const inference::ModelReadyRequest*, inference::ModelReadyResponse*) override;
  Reactor* ModelMetadata(Ctx*, const inference::ModelMetadataRequest*, inference::ModelMetadataResponse*) override;
  // A serialized inference.ModelInferRequest in, a ModelInferResponse out.
  Reactor* ModelInfer(Ctx*, const grpc::ByteBuffer*, grpc::ByteBuffer*) override;
  // A stream of inference requests, answered in order of completion. Also
  // what the plugin holds open to learn at once when the agent goes away.
  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* ModelStreamInfer(Ctx*) override;
  Reactor* ModelStatistics(Ctx*, const inference::ModelStatisticsRequest*,
                           inference::ModelStatisticsResponse*) override;
  Reactor* RepositoryIndex(Ctx*, const inference::RepositoryIndexRequest*,
                           inference::RepositoryIndexResponse*) override;
  Reactor* RepositoryModelLoad(Ctx*, const inference::RepositoryModelLoadRequest*,
                               inference::RepositoryModelLoadResponse*) override;
  Reactor* RepositoryModelUnload(Ctx*, const inference::RepositoryModelUnloadRequest*,
                                 inference::RepositoryModelUnloadResponse*) override;
  Reactor* SystemSharedMemoryStatus(Ctx*, const inference::SystemSharedMemoryStatusRequest*,
                                    inference::SystemSharedMemoryStatusResponse*) override;
  Reactor* SystemSharedMemoryRegister(Ctx*, const inference::SystemSharedMemoryRegisterRequest*,
                                      inference::SystemSharedMemoryRegisterResponse*) override;
  Reactor* SystemSharedMemoryUnregister(Ctx*, const inference::SystemSharedMemoryUnregisterRequest*,
                                        inference::SystemSharedMemoryUnregisterResponse*) override;

 private:
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
  std::atomic<uint64_t> inflightBytes_{0};  // requests taken and not yet answered
  std::mutex streamsMu_;
  std::set<Stream*> streams_;
  std::atomic<bool> lastReady_{false};
};

}  // namespace kubeaccel::agent
