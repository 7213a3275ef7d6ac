#pragma once
// kubeaccel-agent's main loop: the same discovery as the plugin, one
// ServedDevice per agent-mode device while the device is there.

#include <map>
#include <memory>
#include <string>

#include "config/config.hpp"
#include "discovery/device_watcher.hpp"
#include "served_device.hpp"
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
  std::map<std::string, std::unique_ptr<ServedDevice>> devices_;  // "<class>/<id>"
  std::unique_ptr<ProbeServer> probe_;
};

}  // namespace kubeaccel::agent
