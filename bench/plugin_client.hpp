#pragma once
// A DevicePlugin client that dials one plugin socket directly, with one
// channel and stub made up front, so a call's time is the round trip alone
// (the kubelet stand-in makes a stub per call).

#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "deviceplugin/v1beta1/api.grpc.pb.h"

namespace kubeaccel::bench {

class PluginClient {
 public:
  explicit PluginClient(const std::string& socketPath);

  // Allocate for one container, as the kubelet calls it.
  grpc::Status allocate(const std::vector<std::string>& ids);
  grpc::Status preferredAllocation(const std::vector<std::string>& available, int size);

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1beta1::DevicePlugin::Stub> stub_;
};

}  // namespace kubeaccel::bench
