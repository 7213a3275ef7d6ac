#include "slot_handover.hpp"

#include <grpcpp/grpcpp.h>

#include "kubeaccel/admin/v1/admin.grpc.pb.h"
#include "util/agent_dir.hpp"

namespace kubeaccel {

grpc::Status handOverSlot(const std::string& agentDir, const std::string& className, const std::string& deviceId,
                          int slot, std::chrono::milliseconds timeout) {
  auto channel = grpc::CreateChannel("unix:" + adminSocketPath(agentDir), grpc::InsecureChannelCredentials());
  auto stub = admin::v1::SlotAdmin::NewStub(channel);
  admin::v1::HandOverSlotRequest req;
  req.set_class_name(className);
  req.set_device_id(deviceId);
  req.set_slot(slot);
  admin::v1::HandOverSlotResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  return stub->HandOverSlot(&ctx, req, &resp);
}

}  // namespace kubeaccel
