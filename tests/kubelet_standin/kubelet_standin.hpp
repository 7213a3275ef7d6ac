#pragma once
// A stand-in for a current kubelet's device manager, for tests and the demo.
// Like the kubelet it serves Registration on device-plugins/kubelet.sock,
// dials the plugin back during Register and fails the registration if
// GetDevicePluginOptions fails, consumes each resource's ListAndWatch stream
// (each message replaces the whole set; a broken stream marks every device
// Unhealthy), calls Allocate with one container per call, and on restart
// deletes the sockets in device-plugins/ before serving a new kubelet.sock.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "deviceplugin/v1beta1/api.grpc.pb.h"

namespace kubeaccel::testing {

class KubeletStandin {
 public:
  struct Device {
    std::string id;
    std::string health;
    std::vector<int64_t> numaNodes;
  };
  struct Resource {
    std::string endpoint;
    v1beta1::DevicePluginOptions options;
    std::vector<Device> devices;
    int registrations = 0;
    int updates = 0;  // ListAndWatch messages received
    bool streamOpen = false;
    std::chrono::steady_clock::time_point lastRegistered;
    std::chrono::steady_clock::time_point lastUpdate;
  };

  explicit KubeletStandin(std::string deviceManagerDir);
  ~KubeletStandin();

  void start();
  void stop();
  // As a kubelet restart: stop, delete every socket in the directory, start.
  void restart();

  // Blocks until `pred` holds for the recorded state, or the timeout passes.
  bool waitFor(const std::function<bool(const std::map<std::string, Resource>&)>& pred,
               std::chrono::milliseconds timeout);
  bool waitForRegistrations(const std::string& resource, int count, std::chrono::milliseconds timeout);
  std::map<std::string, Resource> resources() const;
  std::vector<std::string> registrationErrors() const;
  // The next `n` Register calls are refused, as by a kubelet that is not ready.
  void failRegistrations(int n);

  // Calls on a registered plugin, as the kubelet makes them.
  grpc::Status allocate(const std::string& resource, const std::vector<std::string>& ids,
                        v1beta1::AllocateResponse* out);
  grpc::Status preferredAllocation(const std::string& resource, const std::vector<std::string>& available,
                                   const std::vector<std::string>& mustInclude, int size,
                                   std::vector<std::string>* out);
  grpc::Status preStartContainer(const std::string& resource, const std::vector<std::string>& ids);

  std::string socketPath() const { return dir_ + "/kubelet.sock"; }

 private:
  class RegistrationService;
  struct Endpoint {
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<grpc::ClientContext> streamCtx;
    std::thread reader;
  };

  grpc::Status onRegister(const v1beta1::RegisterRequest& req);
  void readStream(const std::string& resource, Endpoint* ep, std::unique_ptr<v1beta1::DevicePlugin::Stub> stub);
  std::unique_ptr<v1beta1::DevicePlugin::Stub> stubFor(const std::string& resource);
  void dropEndpoints();

  std::string dir_;
  std::unique_ptr<RegistrationService> service_;
  std::unique_ptr<grpc::Server> server_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Resource> resources_;
  std::map<std::string, std::unique_ptr<Endpoint>> endpoints_;
  std::vector<std::unique_ptr<Endpoint>> retired_;
  std::vector<std::string> errors_;
  int failRegistrations_ = 0;
};

// Health of `id` in `resource` as the kubelet sees it; "" when absent.
std::string healthOf(const std::map<std::string, KubeletStandin::Resource>& rs, const std::string& resource,
                     const std::string& id);
// The IDs the kubelet knows for `resource`, in the plugin's order.
std::vector<std::string> idsOf(const std::map<std::string, KubeletStandin::Resource>& rs,
                               const std::string& resource);

}  // namespace kubeaccel::testing
