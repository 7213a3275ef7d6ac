#include "plugin_daemon.hpp"

#include <sys/stat.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <csignal>
#include <set>

#include "cdi_spec.hpp"
#include "util/agent_dir.hpp"
#include "util/socket_check.hpp"
#include "slot_cdi_spec.hpp"
#include "kubelet_registrar.hpp"

namespace kubeaccel {
namespace {

bool exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

std::string socketName(const DeviceClass& cls) { return "kubeaccel-" + cls.name + ".sock"; }


bool sameIds(const ResourceState::Devices& a, const ResourceState::Devices& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](const auto& x, const auto& y) { return x.id == y.id; });
}

void logHealthChanges(const std::string& resource, const ResourceState::Devices& before,
                      const ResourceState::Devices& after) {
  std::map<std::string, bool> was;  // by advertised ID (a slot has its own health)
  std::set<std::string> wasPhysical, nowPhysical;
  for (const auto& d : before) was[d.id] = d.healthy, wasPhysical.insert(d.physicalId);
  for (const auto& d : after) {
    nowPhysical.insert(d.physicalId);
    if (auto w = was.find(d.id); w != was.end() && w->second != d.healthy) {
      if (d.healthy || d.device.problem.empty())
        spdlog::info("{}: device {} is now {}", resource, d.id, d.healthy ? "Healthy" : "Unhealthy");
      else
        spdlog::warn("{}: device {} is now Unhealthy: {}", resource, d.id, d.device.problem);
    }
  }
  for (const auto& id : wasPhysical)
    if (!nowPhysical.count(id)) spdlog::info("{}: device {} dropped", resource, id);
}

}  // namespace

PluginDaemon::PluginDaemon(const Config& config, PluginOptions options)
    : config_(config), options_(std::move(options)) {}

PluginDaemon::~PluginDaemon() = default;

int PluginDaemon::run() {
  inotify_ = std::make_unique<InotifyWatch>(devicePluginDir());
  loop_.watchFd(inotify_->fd(), [this] {
    inotify_->dispatch([this](InotifyWatch::Change c, const std::string& name) { onSocketDirChange(c, name); });
    reconcile();
  });
  loop_.onSignals({SIGTERM, SIGINT}, [this](int sig) {
    spdlog::info("received {}, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    loop_.stop();
  });
  retry_ = loop_.makeTimer([this] { reconcile(); });
  // One plugin per kubelet directory: a resource socket there that answers
  // is another plugin's (only root may write device-plugins/).
  std::vector<std::string> sockets;
  for (const auto& cls : config_.classes) sockets.push_back(devicePluginDir() + "/" + socketName(cls));
  auto answers = checkNewConnections(sockets, std::chrono::seconds(1));
  for (size_t i = 0; i < sockets.size(); ++i)
    if (answers[i].empty())
      throw std::runtime_error(sockets[i] +
                               ": another plugin serves it (is another daemon running for the same directory?)");
  // The probe answers in the agent directory, the one no other user may write.
  prepareAgentDirectory(options_.agentDir);
  probe_ = std::make_unique<ProbeServer>(loop_, pluginProbePath(options_.agentDir), [this] { return healthProblem(); });
  if (exists(kubeletSocket())) kubeletGeneration_ = 1;

  // Readiness changes arrive on gRPC threads; the loop re-reads them.
  agentHealth_ = std::make_unique<AgentHealth>([this] { loop_.post([this] { onDevices(devices_); }); });
  watcher_ = std::make_unique<DeviceWatcher>(config_, loop_, [this](const auto& d) { onDevices(d); });
  watcher_->start();
  reconcile();
  spdlog::info("kubeaccel-plugin {} running: {} class(es), kubelet dir {}", KUBEACCEL_VERSION,
               config_.classes.size(), options_.kubeletDir);
  loop_.run();

  agentHealth_.reset();
  for (auto& [_, r] : resources_) {
    if (r->server) r->server->stop();
    removeCdiSpec(options_.cdiDir, r->name);
  }
  spdlog::info("stopped");
  return 0;
}

void PluginDaemon::onDevices(const std::vector<TrackedDevice>& devices) {
  if (&devices != &devices_) devices_ = devices;
  std::map<std::string, ResourceState::Devices> byClass;
  std::map<std::string, std::string> slots;  // every agent-mode slot: ID -> its socket
  for (const auto& cls : config_.classes) {
    auto& advertised = byClass[cls.name] = advertise(cls, devices_);
    if (cls.mode == Mode::Agent)
      for (const auto& a : advertised) slots[a.id] = slotDirectory(options_.agentDir, cls.name, a) + "/inference.sock";
  }
  agentHealth_->watch(slots);

  bool added = false;
  for (const auto& cls : config_.classes) {
    auto advertised = std::move(byClass[cls.name]);
    if (cls.mode == Mode::Agent) applyAgentHealth(cls, advertised);
    auto it = resources_.find(cls.name);
    bool fresh = it == resources_.end();
    if (fresh) {
      // A resource is served from its first device on; never for a class the node lacks.
      if (advertised.empty()) continue;
      auto r = std::make_unique<Resource>();
      r->cls = &cls;
      r->name = config_.resourceName(cls);
      it = resources_.emplace(cls.name, std::move(r)).first;
      added = true;
    }
    Resource& r = *it->second;
    auto before = r.state.get();
    logHealthChanges(r.name, *before, advertised);
    // The spec first: once the kubelet hears of a device, its CDI name resolves. A slot's entry
    // does not depend on its health, so agent mode rewrites it only when the slots change.
    if (fresh || (cls.mode == Mode::Device ? advertised != *before : !sameIds(advertised, *before)))
      updateCdiSpec(r, advertised);
    int healthy = static_cast<int>(std::count_if(advertised.begin(), advertised.end(), [](const auto& a) { return a.healthy; }));
    PluginMetrics::devices(options_.metrics, r.name, healthy, static_cast<int>(advertised.size()) - healthy);
    r.state.set(std::move(advertised));
  }
  if (added) reconcile();
}

void PluginDaemon::applyAgentHealth(const DeviceClass&, ResourceState::Devices& advertised) {
  for (auto& a : advertised) a.healthy = a.healthy && agentHealth_->ready(a.id);
}

void PluginDaemon::updateCdiSpec(Resource& r, const ResourceState::Devices& devices) {
  try {
    writeCdiSpec(options_.cdiDir, r.name,
                 r.cls->mode == Mode::Device ? cdiSpec(r.name, devices)
                                             : slotCdiSpec(r.name, r.cls->name, options_.agentDir, devices));
    r.cdiReady = true;
  } catch (const std::exception& e) {
    // Allocate still hands out the device nodes or slot mounts; it just names no CDI devices.
    r.cdiReady = false;
    spdlog::error("{}: {}", r.name, e.what());
  }
}

std::string PluginDaemon::healthProblem() const {
  bool kubeletUp = exists(kubeletSocket());
  for (const auto& [_, r] : resources_) {
    if (!r->server || !r->server->intact()) return r->name + ": not serving on its socket";
    if (kubeletUp && r->registeredWith != kubeletGeneration_) return r->name + ": not registered with the kubelet";
  }
  return "";
}

void PluginDaemon::onSocketDirChange(InotifyWatch::Change change, const std::string& name) {
  if (name == "kubelet.sock" && change == InotifyWatch::Change::Created) {
    ++kubeletGeneration_;
    backoff_ = kRetryAfterKubeletStart;
    retry_->disarm();
    spdlog::info("kubelet.sock (re)created: registering again");
  }
}

// Brings every resource to "serving on an intact socket and registered with the
// current kubelet". Idempotent: runs after any change in device-plugins/.
void PluginDaemon::reconcile() {
  bool kubeletUp = exists(kubeletSocket());
  bool failed = false;
  for (auto& [_, r] : resources_) {
    if (!r->server)
      r->server = std::make_unique<ResourceServer>(devicePluginDir() + "/" + socketName(*r->cls), r->name, *r->cls,
                                                   r->state, AllocationPaths{options_.agentDir, r->name, options_.metrics}, &r->cdiReady);
    if (!r->server->intact()) {
      try {
        r->server->start();
      } catch (const std::exception& e) {
        spdlog::error("{}: {}", r->name, e.what());
        failed = true;
        continue;
      }
      r->registeredWith = 0;
    }
    if (r->registeredWith != 0 && r->registeredWith == kubeletGeneration_) continue;
    if (!kubeletUp) {
      if (!toldWaiting_) spdlog::info("waiting for {} to appear", kubeletSocket());
      toldWaiting_ = true;
      continue;
    }
    v1beta1::DevicePluginOptions opts;
    opts.set_pre_start_required(r->cls->preStartRequired);
    opts.set_get_preferred_allocation_available(true);
    std::string err =
        registerWithKubelet(kubeletSocket(), socketName(*r->cls), r->name, opts, std::chrono::seconds(5));
    PluginMetrics::registration(options_.metrics, r->name, err.empty());
    if (err.empty()) {
      r->registeredWith = kubeletGeneration_ == 0 ? ++kubeletGeneration_ : kubeletGeneration_;
      toldWaiting_ = false;
      spdlog::info("registered {} with the kubelet", r->name);
    } else {
      spdlog::warn("registering {} failed: {}; retrying in {} ms", r->name, err, backoff_.count());
      failed = true;
    }
  }
  if (failed) {
    if (!retry_->armed()) {
      retry_->armIn(backoff_);
      backoff_ = std::min(backoff_ * 2, kMaxBackoff);
    }
  } else {
    backoff_ = kFirstBackoff;
    retry_->disarm();
  }
}

}  // namespace kubeaccel
