#include "kubelet_registrar.hpp"

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include "deviceplugin/v1beta1/api.grpc.pb.h"

namespace kubeaccel {

std::string registerWithKubelet(const std::string& kubeletSocket, const std::string& endpoint,
                                const std::string& resourceName, const v1beta1::DevicePluginOptions& options,
                                std::chrono::milliseconds timeout) {
  auto channel = grpc::CreateChannel("unix://" + kubeletSocket, grpc::InsecureChannelCredentials());
  auto stub = v1beta1::Registration::NewStub(channel);
  v1beta1::RegisterRequest req;
  req.set_version(kDevicePluginApiVersion);
  req.set_endpoint(endpoint);
  req.set_resource_name(resourceName);
  *req.mutable_options() = options;
  v1beta1::Empty resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  grpc::Status s = stub->Register(&ctx, req, &resp);
  if (s.ok()) return "";
  return s.error_message().empty() ? "gRPC code " + std::to_string(s.error_code()) : s.error_message();
}

}  // namespace kubeaccel
