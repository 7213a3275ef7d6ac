#include "served_device.hpp"

#include <spdlog/spdlog.h>

#include <filesystem>

#include "backend/backend_registry.hpp"
#include "discovery/advertisement.hpp"

namespace kubeaccel::agent {

ServedDevice::ServedDevice(const Config& config, const DeviceClass& cls, const Device& device,
                           const AgentOptions& options)
    : deviceDir_(options.agentDir + "/" + cls.name + "/" + device.id) {
  std::string reason;
  // A GPU backend picks its device by PCI address ("pci 0000:3b:00.0").
  std::string pciBusId = device.subsystem == "pci" && device.busLocation.rfind("pci ", 0) == 0
                             ? device.busLocation.substr(4) : "";
  backend_ = makeBackend(cls.backend, options.backendDir, pciBusId, &reason);
  std::string platform = backend_ ? backend_->platform() : "";
  if (backend_)
    spdlog::info("{} {}: backend {} runs on {}", cls.name, device.id, cls.backend, platform);
  else
    spdlog::error("{} {}: unavailable: {}", cls.name, device.id, reason);
  repository_ = std::make_unique<ModelRepository>(options.modelsDir, backend_.get(), reason);
  repository_->loadAll();
  int workers = 1;
  for (const auto& e : repository_->index()) {
    ModelIndexEntry why;
    if (auto m = repository_->find(e.name, &why)) workers = std::max(workers, m->config.instanceCount);
  }
  scheduler_ = std::make_unique<DeviceScheduler>(cls.slots, workers, options.maxQueued);
  for (int k = 0; k < cls.slots; ++k) {
    SlotContext ctx;
    ctx.resource = config.resourceName(cls);
    ctx.deviceId = device.id;
    ctx.slot = k;
    ctx.slotDir = deviceDir_ + "/" + slotDirName(k);
    ctx.backend = cls.backend;
    ctx.platform = platform;
    ctx.unavailableReason = reason;
    ctx.repository = repository_.get();
    ctx.scheduler = scheduler_.get();
    ctx.maxMessageBytes = options.maxMessageBytes;
    if (options.observerFor) ctx.observer = options.observerFor(ctx.resource, ctx.slotId());
    slots_.push_back(std::make_unique<SlotServer>(std::move(ctx), options.maxMessageBytes));
  }
  // Loads and unloads (RepositoryModelLoad on any slot) may change every
  // slot's ServerReady; the plugin learns of it through its watches.
  repository_->onChange([this] {
    for (auto& slot : slots_) slot->service().readinessMayHaveChanged();
  });
  spdlog::info("{} {}: serving {} slot socket(s) under {}", cls.name, device.id, cls.slots, deviceDir_);
}

ServedDevice::~ServedDevice() {
  beginShutdown(std::chrono::steady_clock::now() + kShutdownGrace, "the agent is shutting down");
  finishShutdown();
}

void ServedDevice::beginShutdown(std::chrono::steady_clock::time_point graceEnd, const std::string& why) {
  if (!stopping_.empty() || !scheduler_) return;
  // A slot server's shutdown waits for its calls, and a queued call ends only
  // when the scheduler answers it: the servers stop in threads of their own
  // while the queue drains. Their gRPC deadline comes just after the grace,
  // once the queued calls have been answered UNAVAILABLE: calls still open
  // then (a run in progress, a stream whose client does not read) are cancelled.
  auto deadline = std::chrono::system_clock::now() +
                  std::chrono::duration_cast<std::chrono::system_clock::duration>(
                      graceEnd - std::chrono::steady_clock::now() + std::chrono::milliseconds(500));
  for (auto& slot : slots_) stopping_.emplace_back([s = slot.get(), deadline] { s->shutdown(deadline); });
  stopping_.emplace_back([this, graceEnd, why] { scheduler_->drain(graceEnd, why); });
}

void ServedDevice::finishShutdown() {
  if (repository_) repository_->onChange({});
  for (auto& t : stopping_)
    if (t.joinable()) t.join();
  slots_.clear();       // sockets removed
  scheduler_.reset();   // workers end after their run
}

bool ServedDevice::intact() const {
  std::error_code ec;
  for (const auto& slot : slots_)
    if (!std::filesystem::exists(slot->socketPath(), ec)) return false;
  return true;
}

void ServedDevice::retire() {
  beginShutdown(std::chrono::steady_clock::now() + kShutdownGrace, "the device went away");
  finishShutdown();
  std::error_code ec;
  std::filesystem::remove_all(deviceDir_, ec);
}

}  // namespace kubeaccel::agent
