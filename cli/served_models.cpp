#include "served_models.hpp"

#include <grpcpp/grpcpp.h>

#include <filesystem>

#include "inference/grpc_service.grpc.pb.h"
#include "util/agent_dir.hpp"

namespace kubeaccel {

ServedModels servedModels(const std::string& agentDir, const std::vector<std::string>& deviceKeys,
                          std::chrono::milliseconds timeout) {
  ServedModels out;
  if (deviceKeys.empty()) return out;
  const std::string socket = adminSocketPath(agentDir);
  std::error_code ec;
  bool exists = std::filesystem::exists(socket, ec);
  if (ec) {
    out.unreachable = "cannot reach " + socket + ": " + ec.message() + " (the agent's directory is root's)";
    return out;
  }
  if (!exists) {
    out.unreachable = "no agent socket at " + socket;
    return out;
  }
  auto stub = inference::GRPCInferenceService::NewStub(
      grpc::CreateChannel("unix:" + socket, grpc::InsecureChannelCredentials()));
  for (const auto& key : deviceKeys) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + timeout);
    inference::RepositoryIndexRequest req;
    req.set_repository_name(key);
    req.set_ready(true);
    inference::RepositoryIndexResponse resp;
    grpc::Status s = stub->RepositoryIndex(&ctx, req, &resp);
    if (s.error_code() == grpc::StatusCode::NOT_FOUND) {  // not served (yet), or another catalog's name
      out.notServed[key] = s.error_message();
      continue;
    }
    if (!s.ok()) {
      out.byDevice.clear();
      out.notServed.clear();
      out.unreachable = "cannot reach the agent on " + socket + ": " + s.error_message();
      return out;
    }
    auto& names = out.byDevice[key];
    for (const auto& m : resp.models()) names.push_back(m.name());
  }
  return out;
}

}  // namespace kubeaccel
