#include "served_device.hpp"

#include <spdlog/spdlog.h>

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "backend/backend_registry.hpp"
#include "discovery/advertisement.hpp"
#include "server/slot_dir.hpp"
#include "util/socket_check.hpp"

namespace kubeaccel::agent {

ServedDevice::ServedDevice(const Config& config, const DeviceClass& cls, const Device& device,
                           const AgentOptions& options)
    : deviceDir_(options.agentDir + "/" + cls.name + "/" + device.id),
      key_(deviceKey(cls.name, device.id)), maxMessageBytes_(options.maxMessageBytes),
      maxConnections_(options.maxConnections) {
  std::string reason;
  // A GPU backend picks its device by PCI address ("pci 0000:3b:00.0").
  std::string pciBusId = device.pciAddress();
  backend_ = makeBackend(cls.backend, options.backendDir, pciBusId, &reason);
  std::string platform = backend_ ? backend_->platform() : "";
  if (backend_)
    spdlog::info("{} {}: backend {} runs on {}", cls.name, device.id, cls.backend, platform);
  else
    spdlog::error("{} {}: unavailable: {}", cls.name, device.id, reason);
  report_ = {config.resourceName(cls), device.id, pciBusId, {}};
  reportDevice_ = options.reportDevice;
  repository_ = std::make_unique<ModelRepository>(options.modelsDir, backend_.get(), reason);
  repository_->loadAll();
  int workers = 1;
  for (const auto& e : repository_->index()) {
    ModelIndexEntry why;
    if (auto m = repository_->find(e.name, &why)) workers = std::max(workers, m->config.instanceCount);
  }
  scheduler_ = std::make_unique<DeviceScheduler>(cls.slots, workers, options.maxQueued,
                                                 backend_ ? backend_->hostMemoryPinner() : nullptr);
  for (int k = 0; k < cls.slots; ++k) {
    SlotContext ctx;
    ctx.resource = config.resourceName(cls);
    ctx.deviceId = device.id;
    ctx.repositoryName = key_;
    ctx.slot = k;
    ctx.slotDir = deviceDir_ + "/" + slotDirName(k);
    ctx.backend = cls.backend;
    ctx.platform = platform;
    ctx.unavailableReason = reason;
    ctx.repository = repository_.get();
    ctx.scheduler = scheduler_.get();
    ctx.maxMessageBytes = options.maxMessageBytes;
    ctx.maxStreams = options.maxStreams;
    ctx.maxInflightBytes = options.maxInflightBytes;
    ctx.maxStreamBacklog = options.maxStreamBacklog;
    ctx.maxRegions = options.maxRegions;
    ctx.maxRegionBytes = options.maxRegionBytes;
    ctx.pinner = backend_ ? backend_->hostMemoryPinner() : nullptr;
    if (options.observerFor) ctx.observer = options.observerFor(ctx.resource, ctx.slotId());
    contexts_.push_back(ctx);
    slots_.emplace_back();
    problems_.emplace_back();
  }
}

void ServedDevice::serve() {
  for (size_t k = 0; k < contexts_.size(); ++k) startSlot(k);
  // Loads and unloads (RepositoryModelLoad on any slot) may change every
  // slot's ServerReady; the plugin learns of it through its watches.
  repository_->onChange([this] {
    std::lock_guard lock(slotsMu_);
    for (auto& slot : slots_)
      if (slot) slot->service().readinessMayHaveChanged();
  });
  unanswered_.assign(slots_.size(), 0);
  watchdog_ = std::thread([this] {
    std::unique_lock lock(watchdogMu_);
    while (!watchdogWake_.wait_for(lock, kSlotCheckInterval, [this] { return watchdogStop_; })) {
      lock.unlock();
      checkSlots();
      report(false);
      lock.lock();
    }
  });
  spdlog::info("{}: serving {} slot socket(s) under {}", key_, contexts_.size(), deviceDir_);
  report(false);
}

void ServedDevice::stopWatchdog() {
  {
    std::lock_guard lock(watchdogMu_);
    watchdogStop_ = true;
  }
  watchdogWake_.notify_all();
  if (watchdog_.joinable()) watchdog_.join();
}

std::vector<std::pair<std::string, std::string>> ServedDevice::servedSockets() const {
  std::lock_guard lock(slotsMu_);
  std::vector<std::pair<std::string, std::string>> out;
  for (size_t k = 0; k < slots_.size(); ++k)
    if (slots_[k]) out.emplace_back(contexts_[k].slotId(), slots_[k]->socketPath());
  return out;
}

ServedDevice::HandOver ServedDevice::handOverSlot(int k) {
  if (k < 0 || static_cast<size_t>(k) >= contexts_.size())
    throw std::runtime_error("no slot " + std::to_string(k) + " on " + key_);
  std::lock_guard life(lifecycleMu_);
  const SlotContext& ctx = contexts_[static_cast<size_t>(k)];
  HandOver out;
  // The files first, so that nothing the last pod left can be registered
  // again between the two steps.
  std::string trash = deviceDir_ + "/.trash";
  std::error_code ec;
  std::filesystem::create_directories(trash, ec);
  ::chmod(trash.c_str(), 0700);
  std::string stamp = std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
  std::string failed;
  std::vector<std::string> names;  // listed first: the loop changes the directory
  for (const auto& e : std::filesystem::directory_iterator(ctx.slotDir, ec))
    if (e.path().filename() != "inference.sock") names.push_back(e.path().filename().string());
  for (const auto& name : names) {
    std::string from = ctx.slotDir + "/" + name;
    std::string to = trash + "/s" + std::to_string(k) + "-" + stamp + "-" + name;
    if (::rename(from.c_str(), to.c_str()) != 0) {
      failed += (failed.empty() ? "" : ", ") + name + ": " + std::strerror(errno);
      continue;
    }
    ++out.entriesRemoved;
  }
  if (ec) failed += (failed.empty() ? "" : ", ") + std::string("cannot list ") + ctx.slotDir + ": " + ec.message();
  prepareShmDir(ctx.slotDir);  // a fresh, empty shm/
  {
    std::lock_guard lock(slotsMu_);
    if (slots_[static_cast<size_t>(k)]) out.regionsDropped = static_cast<int>(slots_[static_cast<size_t>(k)]->service().handOver());
  }
  // Deleted as far as the agent may: without CAP_DAC_OVERRIDE it cannot
  // empty a directory the pod made unwritable; that stays in .trash, out of
  // every pod's reach, until an admin removes it.
  for (const auto& e : std::filesystem::directory_iterator(trash, ec)) {
    std::error_code rmEc;
    std::filesystem::remove_all(e.path(), rmEc);
    if (rmEc) spdlog::warn("{}: cannot delete {}: {}", key_, e.path().string(), rmEc.message());
  }
  if (!failed.empty())
    throw std::runtime_error("slot " + ctx.slotId() + ": cannot remove what the last pod left: " + failed);
  spdlog::info("slot {}: handed over: {} entries and {} shared-memory regions of the last pod removed", ctx.slotId(),
               out.entriesRemoved, out.regionsDropped);
  return out;
}

void ServedDevice::report(bool gone) {
  if (!reportDevice_) return;
  DeviceReport r = report_;
  if (!gone)
    for (const auto& e : repository_->index())
      if (e.state == "READY") r.readyModels.push_back(e.name);
  reportDevice_(r, gone);
}

void ServedDevice::checkSlots() {
  std::lock_guard life(lifecycleMu_);
  std::vector<size_t> served, unserved;
  std::vector<std::string> sockets;
  {
    std::lock_guard lock(slotsMu_);
    for (size_t k = 0; k < slots_.size(); ++k) {
      if (!slots_[k]) {
        unserved.push_back(k);
        continue;
      }
      served.push_back(k);
      sockets.push_back(slots_[k]->socketPath());
    }
  }
  for (size_t k : unserved) startSlot(k);
  auto results = checkNewConnections(sockets, std::chrono::milliseconds(1000));
  for (size_t i = 0; i < served.size(); ++i) {
    size_t k = served[i];
    if (results[i].empty()) {
      unanswered_[k] = 0;
      continue;
    }
    spdlog::warn("slot {}: a new connection was not answered: {}", contexts_[k].slotId(), results[i]);
    if (++unanswered_[k] < 2) continue;
    // Serve it afresh. The old server's calls end first (its shutdown
    // cancels those still open after a second).
    spdlog::error("slot {}: not answering new connections; serving it again on a new socket", contexts_[k].slotId());
    std::unique_ptr<SlotServer> old;
    {
      std::lock_guard lock(slotsMu_);
      old = std::move(slots_[k]);
      problems_[k] = "restarting after new connections went unanswered";
    }
    old->shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    old.reset();
    unanswered_[k] = 0;
    startSlot(k);
  }
}

bool ServedDevice::startSlot(size_t k) {
  // One slot's directory is its tenant's to spoil: a slot that cannot be
  // served is logged and left unserved (the plugin then advertises exactly
  // that slot Unhealthy); the device's other slots are served regardless.
  try {
    auto server = std::make_unique<SlotServer>(contexts_[k], maxMessageBytes_, maxConnections_);
    std::lock_guard lock(slotsMu_);
    slots_[k] = std::move(server);
    if (!problems_[k].empty()) spdlog::info("slot {}: served again", contexts_[k].slotId());
    problems_[k].clear();
    return true;
  } catch (const std::exception& e) {
    std::lock_guard lock(slotsMu_);
    if (problems_[k] != e.what())
      spdlog::error("slot {}: cannot serve it: {}; the device's other slots are served", contexts_[k].slotId(),
                    e.what());
    problems_[k] = e.what();
    return false;
  }
}

std::vector<std::string> ServedDevice::unservedSlots() const {
  std::lock_guard lock(slotsMu_);
  std::vector<std::string> out;
  for (size_t k = 0; k < problems_.size(); ++k)
    if (!problems_[k].empty()) out.push_back(contexts_[k].slotId() + ": " + problems_[k]);
  return out;
}

ServedDevice::~ServedDevice() {
  beginShutdown(std::chrono::steady_clock::now() + kShutdownGrace, "the agent is shutting down");
  finishShutdown();
}

void ServedDevice::beginShutdown(std::chrono::steady_clock::time_point graceEnd, const std::string& why) {
  if (!stopping_.empty() || !scheduler_) return;
  stopWatchdog();  // it would serve the slots again
  // A slot server's shutdown waits for its calls, and a queued call ends only
  // when the scheduler answers it: the servers stop in threads of their own
  // while the queue drains. Their gRPC deadline comes just after the grace,
  // once the queued calls have been answered UNAVAILABLE: calls still open
  // then (a run in progress, a stream whose client does not read) are cancelled.
  auto deadline = std::chrono::system_clock::now() +
                  std::chrono::duration_cast<std::chrono::system_clock::duration>(
                      graceEnd - std::chrono::steady_clock::now() + std::chrono::milliseconds(500));
  for (auto& slot : slots_)
    if (slot) stopping_.emplace_back([s = slot.get(), deadline] { s->shutdown(deadline); });
  stopping_.emplace_back([this, graceEnd, why] { scheduler_->drain(graceEnd, why); });
}

void ServedDevice::finishShutdown() {
  if (repository_) repository_->onChange({});
  for (auto& t : stopping_)
    if (t.joinable()) t.join();
  {
    std::lock_guard lock(slotsMu_);
    slots_.clear();  // sockets removed
  }
  scheduler_.reset();   // workers end after their run
}

void ServedDevice::retire() {
  beginShutdown(std::chrono::steady_clock::now() + kShutdownGrace, "the device went away");
  finishShutdown();
  report(true);
  std::error_code ec;
  std::filesystem::remove_all(deviceDir_, ec);
}

}  // namespace kubeaccel::agent
