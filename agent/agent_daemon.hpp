#pragma once
// kubeaccel-agent's main loop: the same discovery as the plugin, one
// ServedDevice per agent-mode device while the device is there.

#include <map>
#include <memory>
#include <mutex>
#include <vector>
#include <string>

#include "config/config.hpp"
#include "discovery/device_watcher.hpp"
#include "served_device.hpp"
#include "server/admin_service.hpp"
#include "server/slot_listener.hpp"
#include "util/event_loop.hpp"
#include "util/probe_socket.hpp"

namespace kubeaccel::agent {

class AgentDaemon {
 public:
  AgentDaemon(const Config& config, AgentOptions options);
  ~AgentDaemon();
  // Serves until SIGTERM or SIGINT; returns the exit code.
  int run();

 private:
  void onDevices(const std::vector<TrackedDevice>& devices);

  const Config& config_;
  AgentOptions options_;
  EventLoop loop_;
  std::unique_ptr<DeviceWatcher> watcher_;
  std::map<std::string, std::shared_ptr<ServedDevice>> devices_;  // "<class>/<id>"
  // A copy of devices_ for the admin socket's gRPC threads.
  std::mutex adminMu_;
  std::vector<std::shared_ptr<ServedDevice>> adminView_;
  void publishDevices();
  std::unique_ptr<AdminService> adminService_;
  std::unique_ptr<SlotAdminService> slotAdminService_;
  std::unique_ptr<grpc::Server> adminServer_;
  std::unique_ptr<SlotListener> adminListener_;
  // Serves <agent-dir>/admin.sock (mode 0600).
  void serveAdmin();
  std::unique_ptr<ProbeServer> probe_;
};

}  // namespace kubeaccel::agent
