#include "server/admin_service.hpp"

#include <spdlog/spdlog.h>

#include <thread>

#include "served_device.hpp"
#include "server/statistics_reply.hpp"

namespace kubeaccel::agent {
namespace {

using grpc::Status;
using grpc::StatusCode;

}  // namespace

AdminService::AdminService(Devices devices) : devices_(std::move(devices)) {
  serve(&AdminService::ServerLive);
  serve(&AdminService::ServerReady);
  serve(&AdminService::RepositoryIndex);
  serve(&AdminService::RepositoryModelLoad);
  serve(&AdminService::RepositoryModelUnload);
  serve(&AdminService::ModelStatistics);
}

Status AdminService::ServerLive(const inference::ServerLiveRequest&, inference::ServerLiveResponse* resp) {
  resp->set_live(true);
  return Status::OK;
}

Status AdminService::ServerReady(const inference::ServerReadyRequest&, inference::ServerReadyResponse* resp) {
  bool ready = false;
  for (const auto& d : devices_()) ready = ready || d->repository().anyServed();
  resp->set_ready(ready);
  return Status::OK;
}

Status AdminService::RepositoryIndex(const inference::RepositoryIndexRequest& req, inference::RepositoryIndexResponse* resp) {
  auto devices = devices_();
  // Each device has its own repository, named by its key ("<class>/<device-id>").
  if (!req.repository_name().empty()) {
    std::string served;
    for (const auto& d : devices) served += (served.empty() ? "" : ", ") + d->key();
    std::erase_if(devices, [&](const auto& d) { return d->key() != req.repository_name(); });
    if (devices.empty())
      return Status(StatusCode::NOT_FOUND, "repository '" + req.repository_name() + "': the agent serves no such device (" +
                                               (served.empty() ? "it serves none" : "devices: " + served) + ")");
  }
  for (const auto& d : devices)
    for (const auto& e : d->repository().index()) {
      if (req.ready() && e.state != "READY") continue;
      auto* m = resp->add_models();
      m->set_name(e.name);
      if (e.version > 0) m->set_version(std::to_string(e.version));
      m->set_state(e.state);
      // With several devices, each model is listed once per device.
      m->set_reason(devices.size() > 1 ? d->key() + (e.reason.empty() ? "" : ": " + e.reason) : e.reason);
    }
  return Status::OK;
}

void AdminService::RepositoryModelLoad(Ctx*, const inference::RepositoryModelLoadRequest& req,
                                       inference::RepositoryModelLoadResponse*, Done done) {
  // The name must be one the file system reads as written: a name with a NUL
  // or a '/' would reach another folder and leave an entry every pod sees.
  if (!ModelRepository::validName(req.model_name()))
    return done(Status(StatusCode::INVALID_ARGUMENT, ModelRepository::nameRule(req.model_name())));
  // Loading takes a while: off the gRPC thread. Only an admin gets here.
  std::thread([this, done = std::move(done), name = req.model_name()] {
    Status result = Status::OK;
    for (const auto& d : devices_()) {
      ModelIndexEntry e = d->repository().load(name);
      spdlog::info("admin: load {} on {}: {}", name, d->key(), e.state.empty() ? e.reason : e.state);
      if (e.reason == "not found" && e.state.empty())
        result = Status(StatusCode::NOT_FOUND, "no model folder '" + name + "' in the repository");
      else if (e.state != "READY" && result.ok())
        result = Status(StatusCode::INVALID_ARGUMENT,
                        "model '" + name + "' failed to load on " + d->key() + ": " + e.reason);
    }
    done(result);
  }).detach();
}

Status AdminService::RepositoryModelUnload(const inference::RepositoryModelUnloadRequest& req, inference::RepositoryModelUnloadResponse*) {
  bool any = false;
  for (const auto& d : devices_()) {
    bool unloaded = d->repository().unload(req.model_name());
    if (unloaded) spdlog::info("admin: unloaded {} on {}", req.model_name(), d->key());
    any = any || unloaded;
  }
  if (!any)
    return Status(StatusCode::NOT_FOUND, "model '" + req.model_name() + "' is not in the repository");
  return Status::OK;
}

Status AdminService::ModelStatistics(const inference::ModelStatisticsRequest& req, inference::ModelStatisticsResponse* resp) {
  auto devices = devices_();
  std::vector<ModelIndexEntry> index;
  if (!devices.empty()) index = devices.front()->repository().index();
  return statisticsReply(req, index,
                         [&](const std::string& name) -> std::optional<ModelStatisticsSnapshot> {
                           std::optional<ModelStatisticsSnapshot> sum;
                           for (const auto& d : devices)
                             if (auto st = d->repository().statistics(name)) {
                               if (!sum) sum.emplace();
                               mergeInto(*sum, st->snapshot());
                             }
                           return sum;
                         },
                         resp);
}

SlotAdminService::SlotAdminService(AdminService::Devices devices) : devices_(std::move(devices)) {
  serve(&SlotAdminService::HandOverSlot);
}

void SlotAdminService::HandOverSlot(Ctx*, const admin::v1::HandOverSlotRequest& req,
                                    admin::v1::HandOverSlotResponse* resp, Done done) {
  std::string key = req.class_name() + "/" + req.device_id();
  for (const auto& d : devices_()) {
    if (d->key() != key) continue;
    std::thread([done = std::move(done), d, resp, slot = req.slot(), key] {
      try {
        auto handed = d->handOverSlot(slot);
        resp->set_entries_removed(handed.entriesRemoved);
        resp->set_regions_dropped(handed.regionsDropped);
        done(Status::OK);
      } catch (const std::exception& e) {
        spdlog::error("{}: hand-over of slot {} failed: {}", key, slot, e.what());
        done(Status(StatusCode::FAILED_PRECONDITION, e.what()));
      }
    }).detach();
    return;
  }
  done(Status(StatusCode::NOT_FOUND, "the agent serves no device " + key));
}

}  // namespace kubeaccel::agent
