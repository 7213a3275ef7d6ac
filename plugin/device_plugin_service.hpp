#pragma once
// The kubelet's DevicePlugin service for one resource (gRPC callback API).

#include <atomic>
#include <mutex>
#include <set>
#include <string>

#include "config/config.hpp"
#include "container_allocation.hpp"
#include "deviceplugin/v1beta1/api.grpc.pb.h"
#include "resource_state.hpp"

namespace kubeaccel {

class DevicePluginService final : public v1beta1::DevicePlugin::CallbackService {
 public:
  // `cdiReady`: whether the resource's CDI spec is current (device mode).
  DevicePluginService(std::string resourceName, const DeviceClass& cls, ResourceState& state, AllocationPaths paths,
                      const std::atomic<bool>* cdiReady = nullptr);
  ~DevicePluginService() override;

  // Ends every ListAndWatch stream cleanly (before the server shuts down).
  void finishStreams();

  grpc::ServerUnaryReactor* GetDevicePluginOptions(grpc::CallbackServerContext* ctx, const v1beta1::Empty* req,
                                                   v1beta1::DevicePluginOptions* resp) override;
  grpc::ServerWriteReactor<v1beta1::ListAndWatchResponse>* ListAndWatch(grpc::CallbackServerContext* ctx,
                                                                        const v1beta1::Empty* req) override;
  grpc::ServerUnaryReactor* GetPreferredAllocation(grpc::CallbackServerContext* ctx,
                                                   const v1beta1::PreferredAllocationRequest* req,
                                                   v1beta1::PreferredAllocationResponse* resp) override;
  grpc::ServerUnaryReactor* Allocate(grpc::CallbackServerContext* ctx, const v1beta1::AllocateRequest* req,
                                     v1beta1::AllocateResponse* resp) override;
  grpc::ServerUnaryReactor* PreStartContainer(grpc::CallbackServerContext* ctx,
                                              const v1beta1::PreStartContainerRequest* req,
                                              v1beta1::PreStartContainerResponse* resp) override;

  class Stream;

 private:
  grpc::Status allocate(const v1beta1::AllocateRequest& req, v1beta1::AllocateResponse& resp);
  grpc::Status preferred(const v1beta1::PreferredAllocationRequest& req, v1beta1::PreferredAllocationResponse& resp);
  void forget(Stream* s);

  std::string resource_;
  const DeviceClass& cls_;
  ResourceState& state_;
  AllocationPaths paths_;
  const std::atomic<bool>* cdiReady_;
  std::mutex mu_;
  std::set<Stream*> streams_;
};

// Builds the ListAndWatch message for a device set.
v1beta1::ListAndWatchResponse listAndWatchMessage(const ResourceState::Devices& devices);

}  // namespace kubeaccel
