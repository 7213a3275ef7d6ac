#pragma once
// The agent's admin socket, <agent-dir>/admin.sock (mode 0600: root on the
// node, or a cluster admin through `kubectl exec` into the agent's
// container): repository changes and figures for the whole node. A slot's
// socket refuses repository changes (they would affect every tenant) and
// shows only that slot's own figures.
//
// KServe v2 calls served here: ServerLive, ServerReady, RepositoryIndex,
// RepositoryModelLoad, RepositoryModelUnload and ModelStatistics; others are
// UNIMPLEMENTED. Requests are decoded as on a slot (DecodingService). A load or unload applies to every device the agent serves
// (they share the model repository); the index lists each device's models
// (RepositoryIndex's repository_name "<class>/<device-id>" picks one device),
// and the statistics are summed over the devices.

#include <functional>
#include <memory>
#include <vector>

#include "inference/grpc_service.grpc.pb.h"
#include "kubeaccel/admin/v1/admin.grpc.pb.h"
#include "server/decoding_service.hpp"

namespace kubeaccel::agent {

class ServedDevice;

class AdminService final : public DecodingService<inference::GRPCInferenceService> {
 public:
  // `devices` gives the devices served now; it is called on gRPC threads.
  using Devices = std::function<std::vector<std::shared_ptr<ServedDevice>>()>;
  explicit AdminService(Devices devices);

 private:
  using Status = grpc::Status;
  Status ServerLive(const inference::ServerLiveRequest&, inference::ServerLiveResponse*);
  Status ServerReady(const inference::ServerReadyRequest&, inference::ServerReadyResponse*);
  Status RepositoryIndex(const inference::RepositoryIndexRequest&, inference::RepositoryIndexResponse*);
  // Loads on every device, off the gRPC thread (a load takes a while).
  void RepositoryModelLoad(Ctx*, const inference::RepositoryModelLoadRequest&,
                           inference::RepositoryModelLoadResponse*, Done);
  Status RepositoryModelUnload(const inference::RepositoryModelUnloadRequest&,
                               inference::RepositoryModelUnloadResponse*);
  Status ModelStatistics(const inference::ModelStatisticsRequest&, inference::ModelStatisticsResponse*);

  Devices devices_;
};

// kubeaccel.admin.v1.SlotAdmin on the admin socket: the plugin's Allocate
// tells the agent that a slot changes hands (docs/architecture.md, "A slot
// changes hands").
class SlotAdminService final : public DecodingService<kubeaccel::admin::v1::SlotAdmin> {
 public:
  explicit SlotAdminService(AdminService::Devices devices);

 private:
  // Off the gRPC thread: moving files and waiting for a watchdog round take a while.
  void HandOverSlot(Ctx*, const admin::v1::HandOverSlotRequest&, admin::v1::HandOverSlotResponse*, Done);

  AdminService::Devices devices_;
};

}  // namespace kubeaccel::agent
