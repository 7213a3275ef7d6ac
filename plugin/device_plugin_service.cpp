#include "device_plugin_service.hpp"
#include "slot_handover.hpp"

#include <spdlog/spdlog.h>

#include <map>

#include "plugin_metrics.hpp"
#include "preferred_allocation.hpp"

namespace kubeaccel {

v1beta1::ListAndWatchResponse listAndWatchMessage(const ResourceState::Devices& devices) {
  v1beta1::ListAndWatchResponse msg;
  for (const auto& d : devices) {
    auto* dev = msg.add_devices();
    dev->set_id(d.id);
    dev->set_health(d.healthy ? "Healthy" : "Unhealthy");
    if (d.numaNode >= 0) dev->mutable_topology()->add_nodes()->set_id(d.numaNode);
  }
  return msg;
}

// One ListAndWatch stream: sends the whole set at once and again on every
// change. At most one write is in flight; changes that arrive meanwhile
// collapse into the newest set.
class DevicePluginService::Stream final : public grpc::ServerWriteReactor<v1beta1::ListAndWatchResponse> {
 public:
  explicit Stream(DevicePluginService& svc) : svc_(svc) {
    token_ = svc_.state_.subscribe([this](const ResourceState::Snapshot& s) { offer(s); });
    offer(svc_.state_.get());
  }

  void end() {
    std::lock_guard lock(mu_);
    if (writing_)
      endAfterWrite_ = true;
    else
      finish(grpc::Status::OK);
  }

 private:
  void offer(const ResourceState::Snapshot& s) {
    std::lock_guard lock(mu_);
    if (finished_) return;
    pending_ = s;
    if (!writing_) writeNext();
  }

  // Sends the pending set if what the kubelet sees (IDs, health, topology)
  // differs from the last message; other device details change silently.
  void writeNext() {
    if (!pending_) return;
    auto msg = listAndWatchMessage(*pending_);
    pending_.reset();
    std::string wire = msg.SerializeAsString();
    if (sentAny_ && wire == sentWire_) return;  // the first set is sent even if empty
    sentAny_ = true;
    sentWire_ = std::move(wire);
    msg_ = std::move(msg);
    writing_ = true;
    PluginMetrics::listAndWatchSent(svc_.paths_.metrics, svc_.resource_);
    StartWrite(&msg_);
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard lock(mu_);
    writing_ = false;
    if (!ok) return finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "stream broken"));
    if (endAfterWrite_) return finish(grpc::Status::OK);
    writeNext();
  }

  void OnCancel() override {
    std::lock_guard lock(mu_);
    finish(grpc::Status::CANCELLED);
  }

  void OnDone() override {
    svc_.state_.unsubscribe(token_);
    svc_.forget(this);
    delete this;
  }

  void finish(const grpc::Status& s) {
    if (finished_) return;
    finished_ = true;
    Finish(s);
  }

  DevicePluginService& svc_;
  int token_ = -1;
  std::mutex mu_;
  ResourceState::Snapshot pending_;
  std::string sentWire_;
  bool sentAny_ = false;
  v1beta1::ListAndWatchResponse msg_;
  bool writing_ = false, endAfterWrite_ = false, finished_ = false;
};

DevicePluginService::DevicePluginService(std::string resourceName, const DeviceClass& cls, ResourceState& state,
                                         AllocationPaths paths, const std::atomic<bool>* cdiReady)
    : resource_(std::move(resourceName)), cls_(cls), state_(state), paths_(std::move(paths)), cdiReady_(cdiReady) {}

DevicePluginService::~DevicePluginService() = default;

void DevicePluginService::finishStreams() {
  std::lock_guard lock(mu_);
  for (Stream* s : streams_) s->end();
}

void DevicePluginService::forget(Stream* s) {
  std::lock_guard lock(mu_);
  streams_.erase(s);
}

grpc::ServerUnaryReactor* DevicePluginService::GetDevicePluginOptions(grpc::CallbackServerContext* ctx,
                                                                      const v1beta1::Empty*,
                                                                      v1beta1::DevicePluginOptions* resp) {
  resp->set_pre_start_required(cls_.preStartRequired);
  resp->set_get_preferred_allocation_available(true);
  auto* r = ctx->DefaultReactor();
  r->Finish(grpc::Status::OK);
  return r;
}

grpc::ServerWriteReactor<v1beta1::ListAndWatchResponse>* DevicePluginService::ListAndWatch(
    grpc::CallbackServerContext*, const v1beta1::Empty*) {
  spdlog::debug("{}: ListAndWatch stream opened", resource_);
  std::lock_guard lock(mu_);
  auto* s = new Stream(*this);
  streams_.insert(s);
  return s;
}

grpc::ServerUnaryReactor* DevicePluginService::GetPreferredAllocation(grpc::CallbackServerContext* ctx,
                                                                      const v1beta1::PreferredAllocationRequest* req,
                                                                      v1beta1::PreferredAllocationResponse* resp) {
  auto* r = ctx->DefaultReactor();
  r->Finish(preferred(*req, *resp));
  return r;
}

grpc::Status DevicePluginService::preferred(const v1beta1::PreferredAllocationRequest& req,
                                            v1beta1::PreferredAllocationResponse& resp) {
  auto snapshot = state_.get();
  std::map<std::string, const AdvertisedDevice*> known;
  for (const auto& d : *snapshot) known[d.id] = &d;
  for (int i = 0; i < req.container_requests_size(); ++i) {
    const auto& creq = req.container_requests(i);
    std::vector<AllocationCandidate> available;
    for (const auto& id : creq.available_deviceids()) {
      auto it = known.find(id);
      // An ID we no longer know counts as one device of its own, picked last.
      if (it == known.end())
        available.push_back({id, id, -1, false});
      else
        available.push_back({id, it->second->physicalId, it->second->numaNode});
    }
    std::vector<std::string> must(creq.must_include_deviceids().begin(), creq.must_include_deviceids().end());
    try {
      auto ids = preferredAllocation(available, must, creq.allocation_size(), cls_.slotPolicy);
      auto* out = resp.add_container_responses();
      for (auto& id : ids) out->add_deviceids(std::move(id));
    } catch (const std::invalid_argument& e) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          resource_ + ": container_requests[" + std::to_string(i) + "]: " + e.what());
    }
  }
  return grpc::Status::OK;
}

grpc::ServerUnaryReactor* DevicePluginService::Allocate(grpc::CallbackServerContext* ctx,
                                                        const v1beta1::AllocateRequest* req,
                                                        v1beta1::AllocateResponse* resp) {
  auto* r = ctx->DefaultReactor();
  grpc::Status s = allocate(*req, *resp);
  PluginMetrics::allocation(paths_.metrics, resource_, s.ok());
  r->Finish(s);
  return r;
}

grpc::Status DevicePluginService::allocate(const v1beta1::AllocateRequest& req, v1beta1::AllocateResponse& resp) {
  auto snapshot = state_.get();
  std::map<std::string, const AdvertisedDevice*> known;
  for (const auto& d : *snapshot) known[d.id] = &d;
  for (int i = 0; i < req.container_requests_size(); ++i) {
    const auto& ids = req.container_requests(i).devices_ids();
    std::string where = resource_ + ": container_requests[" + std::to_string(i) + "]";
    if (ids.empty()) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, where + ": no device IDs");
    std::vector<const AdvertisedDevice*> devices;
    for (const auto& id : ids) {
      auto it = known.find(id);
      if (it == known.end()) {
        spdlog::warn("{}: refused Allocate of unknown device ID '{}'", resource_, id);
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, where + ": unknown device ID '" + id + "'");
      }
      if (!it->second->healthy) {
        spdlog::warn("{}: refused Allocate of unhealthy device {}", resource_, id);
        return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, where + ": device '" + id + "' is Unhealthy");
      }
      // A container that asked for a device must get its nodes, never start without them.
      if (cls_.mode == Mode::Device && it->second->device.nodes.empty()) {
        spdlog::warn("{}: refused Allocate of device {}: it has no device node", resource_, id);
        return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                            where + ": device '" + id + "' has no device node");
      }
      devices.push_back(it->second);
    }
    // Each slot starts empty for its new pod: the agent removes what the
    // last pod left before the kubelet starts the container. A slot that
    // cannot be emptied is not handed over.
    if (cls_.mode == Mode::Agent)
      for (const auto* d : devices) {
        grpc::Status s = handOverSlot(paths_.agentDir, cls_.name, d->physicalId, d->slot);
        if (!s.ok()) {
          spdlog::error("{}: refused Allocate of {}: the agent could not empty the slot: {}", resource_, d->id,
                        s.error_message());
          return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                              where + ": slot '" + d->id + "' could not be emptied for the new pod: " +
                                  s.error_message());
        }
      }
    AllocationPaths paths = paths_;
    if (!cdiReady_ || !cdiReady_->load()) paths.cdiKind.clear();
    *resp.add_container_responses() = containerAllocation(cls_, devices, paths);
    std::string list;
    for (const auto& id : ids) list += (list.empty() ? "" : ",") + id;
    spdlog::info("{}: allocated {}", resource_, list);
  }
  return grpc::Status::OK;
}

grpc::ServerUnaryReactor* DevicePluginService::PreStartContainer(grpc::CallbackServerContext* ctx,
                                                                 const v1beta1::PreStartContainerRequest* req,
                                                                 v1beta1::PreStartContainerResponse*) {
  spdlog::debug("{}: PreStartContainer for {} device(s)", resource_, req->devices_ids_size());
  auto* r = ctx->DefaultReactor();
  r->Finish(grpc::Status::OK);
  return r;
}

}  // namespace kubeaccel
