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
  backend_ = makeBackend(cls.backend, &reason);
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
    if (options.observerFor) ctx.observer = options.observerFor(ctx.resource, ctx.slotId());
    slots_.push_back(std::make_unique<SlotServer>(std::move(ctx), options.maxMessageBytes));
  }
  spdlog::info("{} {}: serving {} slot socket(s) under {}", cls.name, device.id, cls.slots, deviceDir_);
}

ServedDevice::~ServedDevice() {
  slots_.clear();       // no new requests
  scheduler_.reset();   // queued ones are answered
}

bool ServedDevice::intact() const {
  std::error_code ec;
  for (const auto& slot : slots_)
    if (!std::filesystem::exists(slot->socketPath(), ec)) return false;
  return true;
}

void ServedDevice::retire() {
  slots_.clear();
  std::error_code ec;
  std::filesystem::remove_all(deviceDir_, ec);
}

}  // namespace kubeaccel::agent
