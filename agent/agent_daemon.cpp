#include "agent_daemon.hpp"

#include <spdlog/spdlog.h>

#include <sys/stat.h>

#include <csignal>
#include <filesystem>
#include <set>
#include <unistd.h>

#include <grpcpp/server_builder.h>

#include "discovery/advertisement.hpp"
#include "util/agent_dir.hpp"
#include "util/socket_check.hpp"

namespace kubeaccel::agent {

AgentDaemon::AgentDaemon(const Config& config, AgentOptions options) : config_(config), options_(std::move(options)) {}

AgentDaemon::~AgentDaemon() = default;

int AgentDaemon::run() {
  prepareAgentDirectory(options_.agentDir);
  std::error_code ec;
  if (!std::filesystem::is_directory(options_.modelsDir, ec))
    throw std::runtime_error("--models " + options_.modelsDir + " is not a directory");
  loop_.onSignals({SIGTERM, SIGINT}, [this](int sig) {
    spdlog::info("received {}, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    loop_.stop();
  });
  // Healthy when every slot served answers a new connection now (a socket
  // file in place, or an old connection, proves nothing about accepting).
  // A slot its tenant made unservable does not fail the probe: a liveness
  // restart would take every tenant down for one; the plugin reports that
  // slot Unhealthy instead.
  probe_ = std::make_unique<ProbeServer>(loop_, agentProbePath(options_.agentDir), [this] {
    std::vector<std::string> ids, sockets;
    for (const auto& [key, d] : devices_)
      for (auto& [id, socket] : d->servedSockets()) {
        ids.push_back(id);
        sockets.push_back(socket);
      }
    auto results = checkNewConnections(sockets, std::chrono::milliseconds(1000));
    for (size_t i = 0; i < results.size(); ++i)
      if (!results[i].empty()) return "slot " + ids[i] + ": a new connection was not answered: " + results[i];
    return std::string();
  });
  serveAdmin();
  watcher_ = std::make_unique<DeviceWatcher>(config_, loop_, [this](const auto& d) { onDevices(d); });
  watcher_->start();
  spdlog::info("kubeaccel-agent {} running: agent dir {}, models {}", KUBEACCEL_VERSION, options_.agentDir,
               options_.modelsDir);
  loop_.run();
  probe_.reset();
  adminListener_.reset();
  adminServer_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
  adminServer_->Wait();
  {
    std::lock_guard lock(adminMu_);
    adminView_.clear();
  }
  // Every device stops at once, under one grace, so the agent's exit takes
  // about the grace plus the longest run in progress, whatever the queues hold.
  auto graceEnd = std::chrono::steady_clock::now() + ServedDevice::kShutdownGrace;
  for (auto& [_, d] : devices_) d->beginShutdown(graceEnd, "the agent is shutting down");
  devices_.clear();  // sockets go, slot directories stay for the next agent
  spdlog::info("stopped");
  return 0;
}

void AgentDaemon::onDevices(const std::vector<TrackedDevice>& devices) {
  std::set<std::string> present;
  for (const auto& t : devices) {
    const DeviceClass* cls = config_.findClass(t.device.className);
    if (!cls || cls->mode != Mode::Agent) continue;
    std::string key = deviceKey(cls->name, t.device.id);
    present.insert(key);
    if (devices_.count(key)) continue;  // re-enumeration keeps the same device and its sockets
    try {
      auto d = std::make_shared<ServedDevice>(config_, *cls, t.device, options_);
      devices_[key] = d;
      publishDevices();
      d->serve();
    } catch (const std::exception& e) {
      spdlog::error("{}: cannot serve: {}", key, e.what());
    }
  }
  for (auto it = devices_.begin(); it != devices_.end();) {
    if (present.count(it->first)) {
      ++it;
      continue;
    }
    spdlog::info("{}: device dropped; removing its slots", it->first);
    it->second->retire();
    it = devices_.erase(it);
  }
  publishDevices();
}

void AgentDaemon::publishDevices() {
  std::vector<std::shared_ptr<ServedDevice>> view;
  for (const auto& [_, d] : devices_) view.push_back(d);
  std::lock_guard lock(adminMu_);
  adminView_ = std::move(view);
}

void AgentDaemon::serveAdmin() {
  std::string path = adminSocketPath(options_.agentDir);
  adminService_ = std::make_unique<AdminService>([this] {
    std::lock_guard lock(adminMu_);
    return adminView_;
  });
  slotAdminService_ = std::make_unique<SlotAdminService>([this] {
    std::lock_guard lock(adminMu_);
    return adminView_;
  });
  grpc::ServerBuilder builder;
  builder.SetMaxReceiveMessageSize(options_.maxMessageBytes);
  builder.SetMaxSendMessageSize(options_.maxMessageBytes);
  builder.RegisterService(adminService_.get());
  builder.RegisterService(slotAdminService_.get());
  adminServer_ = builder.BuildAndStart();
  if (!adminServer_) throw std::runtime_error("cannot start the admin server");
  ::unlink(path.c_str());  // left by an agent that did not stop cleanly (agent-dir is ours)
  adminListener_ = std::make_unique<SlotListener>(path, "admin", adminServer_.get(), 16, 0600);
  spdlog::info("admin socket: {} (mode 0600)", path);
}

}  // namespace kubeaccel::agent
