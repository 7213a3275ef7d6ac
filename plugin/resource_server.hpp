#pragma once
// One gRPC server per resource, on <kubelet-dir>/device-plugins/kubeaccel-<class>.sock.

#include <sys/types.h>

#include <memory>
#include <string>

#include <grpcpp/server.h>

#include "device_plugin_service.hpp"

namespace kubeaccel {

class ResourceServer {
 public:
  ResourceServer(std::string socketPath, std::string resourceName, const DeviceClass& cls, ResourceState& state,
                 AllocationPaths paths, const std::atomic<bool>* cdiReady = nullptr);
  ~ResourceServer();

  // (Re)starts serving on a fresh socket. Throws std::runtime_error on failure.
  void start();
  // Ends the streams, stops serving and removes the socket if it is ours.
  void stop();
  // Serving, and the socket file is still the one this server made (the
  // kubelet deletes plugin sockets when it restarts).
  bool intact() const;

  const std::string& socketPath() const { return socketPath_; }

 private:
  std::string socketPath_;
  std::string resource_;
  const DeviceClass& cls_;
  ResourceState& state_;
  AllocationPaths paths_;
  const std::atomic<bool>* cdiReady_;
  std::unique_ptr<DevicePluginService> service_;
  std::unique_ptr<grpc::Server> server_;
  ino_t inode_ = 0;
};

}  // namespace kubeaccel
