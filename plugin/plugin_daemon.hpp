#pragma once
// kubeaccel-plugin's main loop: discovery in, one DevicePlugin server per
// resource out, registration with the kubelet kept alive across its restarts.

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "agent_health.hpp"
#include "plugin_metrics.hpp"
#include "config/config.hpp"
#include "discovery/device_watcher.hpp"
#include "resource_server.hpp"
#include "resource_state.hpp"
#include "util/event_loop.hpp"
#include "util/inotify_watch.hpp"
#include "util/probe_socket.hpp"

namespace kubeaccel {

struct PluginOptions {
  PluginMetrics* metrics = nullptr;  // null: metrics are off
  std::string kubeletDir = "/var/lib/kubelet";
  std::string agentDir = "/var/lib/kubeaccel/agent";
  std::string cdiDir = "/var/run/cdi";
};

class PluginDaemon {
 public:
  PluginDaemon(const Config& config, PluginOptions options);
  ~PluginDaemon();

  // Serves until SIGTERM or SIGINT; returns the exit code. Throws
  // std::runtime_error when it cannot start (no device-plugins directory, ...).
  int run();

  static constexpr std::chrono::milliseconds kFirstBackoff{100};
  // inotify reports a new kubelet.sock at bind(), before the kubelet listens:
  // the first retry after it appears comes much sooner.
  static constexpr std::chrono::milliseconds kRetryAfterKubeletStart{5};
  static constexpr std::chrono::milliseconds kMaxBackoff{10000};

 private:
  struct Resource {
    const DeviceClass* cls;
    std::string name;  // kubeaccel.io/<class>
    ResourceState state;
    std::unique_ptr<ResourceServer> server;
    uint64_t registeredWith = 0;  // kubelet generation; 0: not registered
    std::atomic<bool> cdiReady{false};  // the CDI spec lists the current devices
  };

  void updateCdiSpec(Resource& r, const ResourceState::Devices& devices);

  void onDevices(const std::vector<TrackedDevice>& devices);
  // Agent-mode slots are Healthy only while the agent serves them.
  void applyAgentHealth(const DeviceClass& cls, ResourceState::Devices& advertised);
  void onSocketDirChange(InotifyWatch::Change change, const std::string& name);
  void reconcile();
  // Why the daemon is not healthy, or "" (for --probe).
  std::string healthProblem() const;
  std::string devicePluginDir() const { return options_.kubeletDir + "/device-plugins"; }
  std::string kubeletSocket() const { return devicePluginDir() + "/kubelet.sock"; }

  const Config& config_;
  PluginOptions options_;
  EventLoop loop_;
  std::map<std::string, std::unique_ptr<Resource>> resources_;
  std::vector<TrackedDevice> devices_;  // the last set discovery reported
  std::unique_ptr<AgentHealth> agentHealth_;
  std::unique_ptr<InotifyWatch> inotify_;
  std::unique_ptr<DeviceWatcher> watcher_;
  std::unique_ptr<EventLoop::Timer> retry_;
  std::unique_ptr<ProbeServer> probe_;
  std::chrono::milliseconds backoff_ = kFirstBackoff;
  // Bumped whenever kubelet.sock is created: a new kubelet to register with.
  uint64_t kubeletGeneration_ = 0;
  bool toldWaiting_ = false;
};

}  // namespace kubeaccel
