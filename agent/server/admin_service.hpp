#pragma once
// The agent's admin socket, <agent-dir>/admin.sock (mode 0600: root on the
// node, or a cluster admin through `kubectl exec` into the agent's
// container): repository changes and figures for the whole node. A slot's
// socket refuses repository changes (they would affect every tenant) and
// shows only that slot's own figures.
//
// KServe v2 calls served here: ServerLive, ServerReady, RepositoryIndex,
// RepositoryModelLoad, RepositoryModelUnload and ModelStatistics; others are
// UNIMPLEMENTED. A load or unload applies to every device the agent serves
// (they share the model repository); the index lists each device's models,
// and the statistics are summed over the devices.

#include <functional>
#include <memory>
#include <vector>

#include "inference/grpc_service.grpc.pb.h"
#include "kubeaccel/admin/v1/admin.grpc.pb.h"

namespace kubeaccel::agent {

class ServedDevice;

class AdminService final : public inference::GRPCInferenceService::CallbackService {
 public:
  // `devices` gives the devices served now; it is called on gRPC threads.
  using Devices = std::function<std::vector<std::shared_ptr<ServedDevice>>()>;
  explicit AdminService(Devices devices);

  using Ctx = grpc::CallbackServerContext;
  using Reactor = grpc::ServerUnaryReactor;
  Reactor* ServerLive(Ctx*, const inference::ServerLiveRequest*, inference::ServerLiveResponse*) override;
  Reactor* ServerReady(Ctx*, const inference::ServerReadyRequest*, inference::ServerReadyResponse*) override;
  Reactor* RepositoryIndex(Ctx*, const inference::RepositoryIndexRequest*,
                           inference::RepositoryIndexResponse*) override;
  Reactor* RepositoryModelLoad(Ctx*, const inference::RepositoryModelLoadRequest*,
                               inference::RepositoryModelLoadResponse*) override;
  Reactor* RepositoryModelUnload(Ctx*, const inference::RepositoryModelUnloadRequest*,
                                 inference::RepositoryModelUnloadResponse*) override;
  Reactor* ModelStatistics(Ctx*, const inference::ModelStatisticsRequest*,
                           inference::ModelStatisticsResponse*) override;

 private:
  Devices devices_;
};

// kubeaccel.admin.v1.SlotAdmin on the admin socket: the plugin's Allocate
// tells the agent that a slot changes hands (docs/architecture.md, "A slot
// changes hands").
class SlotAdminService final : public kubeaccel::admin::v1::SlotAdmin::CallbackService {
 public:
  explicit SlotAdminService(AdminService::Devices devices);
  grpc::ServerUnaryReactor* HandOverSlot(grpc::CallbackServerContext*, const admin::v1::HandOverSlotRequest*,
                                         admin::v1::HandOverSlotResponse*) override;

 private:
  AdminService::Devices devices_;
};

}  // namespace kubeaccel::agent
