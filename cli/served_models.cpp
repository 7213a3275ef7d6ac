#include "served_models.hpp"

#include <grpcpp/grpcpp.h>

#include <filesystem>

#include "inference/grpc_service.grpc.pb.h"

namespace kubeaccel {

ServedModels servedModels(const std::string& agentDir, const std::vector<std::string>& deviceKeys,
                          std::chrono::milliseconds timeout) {
  ServedModels out;
  if (deviceKeys.empty()) return out;
  const std::string socket = agentDir + "/admin.sock";
  std::error_code ec;
  if (!std::filesystem::exists(socket, ec)) {
    out.unreachable = "no agent socket at " + socket + (ec ? " (" + ec.message() + ")" : "");
    return out;
  }
  auto stub = inference::GRPCInferenceService::NewStub(
      grpc::CreateChannel("unix://" + socket, grpc::InsecureChannelCredentials()));
  for (const auto& key : deviceKeys) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + timeout);
    inference::RepositoryIndexRequest req;
    req.set_repository_name(key);
    req.set_ready(true);
    inference::RepositoryIndexResponse resp;
    grpc::Status s = stub->RepositoryIndex(&ctx, req, &resp);
    if (s.error_code() == grpc::StatusCode::NOT_FOUND) continue;  // not served (yet)
    if (!s.ok()) {
      out.byDevice.clear();
      out.unreachable = "the agent does not answer on " + socket + ": " + s.error_message();
      return out;
    }
    auto& names = out.byDevice[key];
    for (const auto& m : resp.models()) names.push_back(m.name());
  }
  return out;
}

}  // namespace kubeaccel
