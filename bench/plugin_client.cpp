#include "plugin_client.hpp"

namespace kubeaccel::bench {

PluginClient::PluginClient(const std::string& socketPath)
    : channel_(grpc::CreateChannel("unix://" + socketPath, grpc::InsecureChannelCredentials())),
      stub_(v1beta1::DevicePlugin::NewStub(channel_)) {}

grpc::Status PluginClient::allocate(const std::vector<std::string>& ids) {
  v1beta1::AllocateRequest req;
  auto* c = req.add_container_requests();
  for (const auto& id : ids) c->add_devices_ids(id);
  v1beta1::AllocateResponse resp;
  grpc::ClientContext ctx;  // no deadline, as the kubelet
  return stub_->Allocate(&ctx, req, &resp);
}

grpc::Status PluginClient::preferredAllocation(const std::vector<std::string>& available, int size) {
  v1beta1::PreferredAllocationRequest req;
  auto* c = req.add_container_requests();
  for (const auto& id : available) c->add_available_deviceids(id);
  c->set_allocation_size(size);
  v1beta1::PreferredAllocationResponse resp;
  grpc::ClientContext ctx;
  return stub_->GetPreferredAllocation(&ctx, req, &resp);
}

}  // namespace kubeaccel::bench
