#include "server/inference_service.hpp"

#include <spdlog/spdlog.h>

#include <deque>
#include <mutex>
#include <thread>

#include "server/infer_request.hpp"
#include "server/slot_dir.hpp"
#include "server/statistics_reply.hpp"
#include "server/wire.hpp"

namespace kubeaccel::agent {
namespace {

using grpc::Status;
using grpc::StatusCode;

InferJob::Clock::time_point steadyDeadline(const grpc::CallbackServerContext* ctx) {
  auto deadline = ctx->deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) return InferJob::Clock::time_point::max();
  auto left = deadline - std::chrono::system_clock::now();
  if (left > std::chrono::hours(24 * 365)) return InferJob::Clock::time_point::max();
  return InferJob::Clock::now() + std::chrono::duration_cast<InferJob::Clock::duration>(left);
}

}  // namespace

InferenceService::InferenceService(SlotContext ctx) : ctx_(std::move(ctx)), shm_(slotShmDir(ctx_.slotDir), ctx_.maxRegions, ctx_.maxRegionBytes, ctx_.pinner) {
  lastReady_ = serverReady();
  serve(&InferenceService::ServerLive);
  serve(&InferenceService::ServerReady);
  serve(&InferenceService::ServerMetadata);
  serve(&InferenceService::ModelReady);
  serve(&InferenceService::ModelMetadata);
  serve(&InferenceService::ModelInfer);
  serveStream("ModelStreamInfer", &InferenceService::ModelStreamInfer);
  serve(&InferenceService::ModelStatistics);
  serve(&InferenceService::RepositoryIndex);
  serve(&InferenceService::RepositoryModelLoad);
  serve(&InferenceService::RepositoryModelUnload);
  serve(&InferenceService::SystemSharedMemoryStatus);
  serve(&InferenceService::SystemSharedMemoryRegister);
  serve(&InferenceService::SystemSharedMemoryUnregister);
}

bool InferenceService::serverReady() const { return ctx_.ready() && ctx_.repository->anyServed(); }

Status InferenceService::ServerLive(const inference::ServerLiveRequest&, inference::ServerLiveResponse* resp) {
  resp->set_live(true);
  return Status::OK;
}

Status InferenceService::ServerReady(const inference::ServerReadyRequest&, inference::ServerReadyResponse* resp) {
  resp->set_ready(serverReady());
  return Status::OK;
}

Status InferenceService::ServerMetadata(const inference::ServerMetadataRequest&, inference::ServerMetadataResponse* resp) {
  resp->set_name("kubeaccel-agent");
  resp->set_version(KUBEACCEL_VERSION);
  for (const char* ext : {"model_repository", "statistics", "system_shared_memory"}) resp->add_extensions(ext);
  return Status::OK;
}

Status InferenceService::findModel(const std::string& name, const std::string& version,
                                   std::shared_ptr<const ServedModel>* out) const {
  ModelIndexEntry why;
  *out = ctx_.repository->find(name, &why);
  if (!*out) {
    if (why.state.empty()) {
      std::string known;
      for (const auto& e : ctx_.repository->index()) known += (known.empty() ? "" : ", ") + e.name;
      return Status(StatusCode::NOT_FOUND,
                    "model '" + name + "' is not in the repository (models: " + (known.empty() ? "none" : known) + ")");
    }
    return Status(StatusCode::UNAVAILABLE, "model '" + name + "' is " + why.state +
                                               (why.reason.empty() ? "" : ": " + why.reason));
  }
  if (!version.empty() && version != std::to_string((*out)->version))
    return Status(StatusCode::NOT_FOUND, "model '" + name + "' version " + version + " is not served (version " +
                                             std::to_string((*out)->version) + " is)");
  return Status::OK;
}

Status InferenceService::ModelReady(const inference::ModelReadyRequest& req, inference::ModelReadyResponse* resp) {
  std::shared_ptr<const ServedModel> model;
  Status s = findModel(req.name(), req.version(), &model);
  resp->set_ready(s.ok());
  return s.error_code() == StatusCode::NOT_FOUND ? s : Status::OK;
}

Status InferenceService::ModelMetadata(const inference::ModelMetadataRequest& req, inference::ModelMetadataResponse* resp) {
  std::shared_ptr<const ServedModel> model;
  if (Status s = findModel(req.name(), req.version(), &model); !s.ok()) return s;
  resp->set_name(model->name);
  resp->add_versions(std::to_string(model->version));
  // The engine, then how this model runs on it ("torch: CPU (libtorch 1.13.0); cpu,
  // 2 threads, fp16"): the precision beside the datatypes the tensors keep.
  std::string info = model->loaded->info();
  resp->set_platform(ctx_.backend + ": " + ctx_.platform + (info.empty() ? "" : "; " + info));
  auto add = [&](const TensorSpec& spec, inference::ModelMetadataResponse::TensorMetadata* t) {
    t->set_name(spec.name);
    t->set_datatype(spec.datatype);
    for (size_t d = 0; d < spec.shape.size(); ++d)
      t->add_shape(d == 0 && model->batched() ? -1 : spec.shape[d]);  // the batch dimension
  };
  for (const auto& in : model->loaded->inputs()) add(in, resp->add_inputs());
  for (const auto& out : model->loaded->outputs()) add(out, resp->add_outputs());
  return Status::OK;
}

void InferenceService::infer(const inference::ModelInferRequest& req, inference::ModelInferResponse* resp,
                             InferJob::Clock::time_point deadline, std::function<bool()> cancelled,
                             std::function<void(Status)> done) {
  auto start = InferJob::Clock::now();
  std::shared_ptr<const ServedModel> model;
  if (Status s = findModel(req.model_name(), req.model_version(), &model); !s.ok()) return done(s);
  auto mine = slotStats(model->name);
  if (ctx_.observer.received) ctx_.observer.received(model->name);
  auto failed = [&](const Status& s) {
    model->stats->recordFailure(InferJob::Clock::now() - start);
    mine->recordFailure(InferJob::Clock::now() - start);
    if (ctx_.observer.answered) ctx_.observer.answered(model->name, s.error_code(), InferJob::Clock::now() - start, {});
    done(s);
  };
  // Bytes in flight: a request's bytes stay in memory until it is answered,
  // so a slot may hold at most --max-inflight-bytes of them at once (a single
  // request is always let in; --max-message-bytes bounds it).
  const uint64_t bytes = req.ByteSizeLong();
  const uint64_t total = inflightBytes_->fetch_add(bytes) + bytes;
  if (total > bytes && total > ctx_.maxInflightBytes) {
    *inflightBytes_ -= bytes;
    return failed(Status(StatusCode::RESOURCE_EXHAUSTED,
                         "slot " + ctx_.slotId() + " has " + std::to_string(total - bytes) +
                             " bytes of requests in flight; this one's " + std::to_string(bytes) +
                             " would pass the limit of " + std::to_string(ctx_.maxInflightBytes) +
                             " (the agent's --max-inflight-bytes)"));
  }
  std::shared_ptr<void> inflight(nullptr, [counter = inflightBytes_, bytes](void*) { *counter -= bytes; });
  auto prepared = std::make_shared<PreparedInfer>();
  if (Status s = prepareInfer(req, *model, shm_, prepared.get()); !s.ok()) return failed(s);
  InferJob job;
  job.model = model;
  job.slot = ctx_.slot;
  job.inputs = prepared->inputs;
  job.outputDestinations = outputDestinations(*model, *prepared);
  job.rows = prepared->rows;
  job.deadline = deadline;
  job.cancelled = cancelled;
  job.done = [this, &req, resp, prepared, model, mine, inflight, start, done, cancelled](Status s, std::vector<OutputTensor> outputs,
                                                                          const JobTiming& timing) {
    const bool ran = s.ok() && timing.batchSize > 0;  // the run itself succeeded (as the device counts it)
    if (s.ok()) s = buildInferResponse(req, *model, *prepared, outputs, resp);
    for (const auto& o : outputs)
      if (s.ok() && o.inDestination && !loggedInPlace_.exchange(true))
        spdlog::debug("slot {}: the engine writes outputs straight into the pod's pinned shared memory (first: "
                      "model {}, output '{}')", ctx_.slotId(), model->name, o.name);
    for (const auto& v : prepared->shmInputs)
      if (s.ok() && ShmRegistry::truncated(v))
        s = Status(StatusCode::FAILED_PRECONDITION, "a shared memory input was truncated during inference");
    // An output written into a truncated file went to the zero pages that
    // replaced it: the client would read nothing of it.
    for (const auto& o : prepared->outputs)
      if (s.ok() && o.shm && ShmRegistry::truncated(*o.shm))
        s = Status(StatusCode::FAILED_PRECONDITION, "output '" + o.name + "': shared memory region '" + o.shmRegion +
                                                        "' was truncated during inference; the output was lost");
    // An answer gRPC would refuse to send is a failure, said here with the reason.
    if (s.ok() && resp->ByteSizeLong() > static_cast<size_t>(ctx_.maxMessageBytes))
      s = Status(StatusCode::RESOURCE_EXHAUSTED,
                 "the answer is " + std::to_string(resp->ByteSizeLong()) + " bytes, over the agent's " +
                     "--max-message-bytes (" + std::to_string(ctx_.maxMessageBytes) +
                     "); ask for fewer rows or for the outputs in shared memory");
    // A client that went away during the run gets nothing: not a success.
    if (s.ok() && cancelled && cancelled())
      s = Status(StatusCode::CANCELLED, "the client cancelled the request while it ran");
    auto total = InferJob::Clock::now() - start;
    // The device's figures, and the slot's own: the runs its requests took
    // part in (a batch shared with other slots counts for each).
    if (ran) mine->recordExecution(static_cast<uint64_t>(timing.batchSize), timing.compute);
    for (agent::ModelStatistics* st : {model->stats.get(), mine.get()}) {
      if (s.ok())
        st->recordSuccess(total, timing.queue, static_cast<uint64_t>(prepared->rows));
      else if (s.error_code() == StatusCode::CANCELLED)
        st->recordCancelled(total);
      else
        st->recordFailure(total);
    }
    if (ctx_.observer.answered) ctx_.observer.answered(model->name, s.error_code(), total, timing);
    done(s);
  };
  if (Status s = ctx_.scheduler->submit(std::move(job)); !s.ok()) failed(s);
}

void InferenceService::ModelInfer(Ctx* ctx, const inference::ModelInferRequest& req,
                                  inference::ModelInferResponse* resp, Done done) {
  // The context lives until `done`, which comes after the last cancelled() call.
  infer(req, resp, steadyDeadline(ctx), [ctx] { return ctx->IsCancelled(); }, std::move(done));
}

// Reads requests one after another and writes each answer when it is ready;
// writes are queued, since gRPC allows one at a time.
// Messages are decoded here: a request that does not decode is answered on
// the stream with error_message saying why (as a unary call's status would),
// and the stream goes on.
class InferenceService::Stream final : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  Stream(InferenceService& svc, Ctx* ctx)
      : svc_(svc), ctx_(ctx), healthWatch_(ctx->client_metadata().count(kHealthWatchMetadata) > 0) {
    {
      std::lock_guard lock(svc_.streamsMu_);
      svc_.streams_.insert(this);
    }
    read();
    // Readiness that changed between the plugin's ServerReady and this watch
    // found no watch to end: end this one, so the plugin asks again.
    if (healthWatch_) {
      auto saw = ctx->client_metadata().find(kHealthWatchMetadata);
      if ((saw->second == "ready") != svc_.serverReady()) close();
    }
  }

  bool healthWatch() const { return healthWatch_; }

  // No more requests; finish once the ones in flight are answered.
  void close() {
    std::lock_guard lock(mu_);
    readsDone_ = true;
    maybeFinish();
  }

 private:
  struct Pending {
    grpc::ByteBuffer in, out;
    inference::ModelInferRequest req;
    inference::ModelStreamInferResponse resp;
  };

  void read() {
    incoming_ = std::make_unique<Pending>();
    StartRead(&incoming_->in);
  }

  // Queues p's answer for writing (mu_ held).
  void answer(Pending* p) {
    if (Status s = encodeMessage(p->resp, &p->out); !s.ok()) {
      inference::ModelStreamInferResponse err;
      err.set_error_message("cannot encode the answer: " + s.error_message());
      encodeMessage(err, &p->out);
    }
    writes_.emplace_back(p);
    ++answered_;
    if (!writing_) writeNext();
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client closed its side (or went away)
      std::lock_guard lock(mu_);
      readsDone_ = true;
      maybeFinish();
      return;
    }
    Pending* p = incoming_.release();
    if (Status s = decodeMessage(p->in, &p->req, "ModelStreamInfer"); !s.ok()) {
      p->resp.set_error_message(s.error_message());
      std::lock_guard lock(mu_);
      answer(p);
      readPaused_ = overBacklog();
      if (!readPaused_) read();
      return;
    }
    p->in.Clear();
    bool readMore;
    {
      std::lock_guard lock(mu_);
      ++inFlight_;
      readMore = !overBacklog();
      readPaused_ = !readMore;
    }
    // The stream lives until its last request is answered, so ctx_ outlives the job.
    svc_.infer(p->req, p->resp.mutable_infer_response(), steadyDeadline(ctx_), [ctx = ctx_] { return ctx->IsCancelled(); },
               [this, p](Status s) {
      if (!s.ok()) {
        // Answers come in completion order: the id (and model) say which
        // request an error belongs to.
        auto* r = p->resp.mutable_infer_response();
        r->Clear();
        r->set_id(p->req.id());
        r->set_model_name(p->req.model_name());
        r->set_model_version(p->req.model_version());
        p->resp.set_error_message(s.error_message());
      }
      std::lock_guard lock(mu_);
      --inFlight_;
      answer(p);
    });
    // Backpressure: a client that does not read its answers stops being
    // read from (gRPC's flow control then stops it sending), rather than
    // growing the agent's write queue without bound.
    if (readMore) read();
  }

  // Requests in flight plus answers not yet written reach the bound (mu_ held).
  bool overBacklog() const { return inFlight_ + writes_.size() >= svc_.ctx_.maxStreamBacklog; }
  // Reads again once the backlog fell under the bound (mu_ held).
  void maybeResume() {
    if (readPaused_ && !readsDone_ && !overBacklog()) {
      readPaused_ = false;
      read();
    }
  }

  void writeNext() {
    if (writes_.empty()) return maybeFinish();
    writing_ = true;
    StartWrite(&writes_.front()->out);
  }

  void OnWriteDone(bool) override {
    std::lock_guard lock(mu_);
    writing_ = false;
    writes_.pop_front();
    maybeResume();
    writeNext();
  }

  void OnCancel() override {}

  void maybeFinish() {
    if (readsDone_ && inFlight_ == 0 && !writing_ && writes_.empty() && !finished_) {
      finished_ = true;
      Finish(Status::OK);
    }
  }

  void OnDone() override {
    {
      std::lock_guard lock(svc_.streamsMu_);
      svc_.streams_.erase(this);
    }
    if (!healthWatch_)
      spdlog::debug("slot {}: a ModelStreamInfer stream ended after {} request(s)", svc_.ctx_.slotId(), answered_);
    delete this;
  }

  InferenceService& svc_;
  Ctx* ctx_;
  const bool healthWatch_;  // the plugin's watch of this slot's readiness
  std::unique_ptr<Pending> incoming_;
  std::mutex mu_;
  std::deque<std::unique_ptr<Pending>> writes_;
  int inFlight_ = 0;
  uint64_t answered_ = 0;
  bool readsDone_ = false, writing_ = false, finished_ = false;
  bool readPaused_ = false;  // not reading: the backlog is full
};

void InferenceService::closeStreams() {
  std::lock_guard lock(streamsMu_);
  for (Stream* s : streams_) s->close();
}

size_t InferenceService::handOver() {
  size_t regions = shm_.size();
  shm_.unregisterRegion("");
  {
    std::lock_guard lock(statsMu_);
    stats_.clear();
  }
  std::lock_guard lock(streamsMu_);
  for (Stream* s : streams_)
    if (!s->healthWatch()) s->close();
  return regions;
}

void InferenceService::readinessMayHaveChanged() {
  bool now = serverReady();
  if (lastReady_.exchange(now) == now) return;
  spdlog::info("slot {}: ServerReady is now {}", ctx_.slotId(), now);
  std::lock_guard lock(streamsMu_);
  for (Stream* s : streams_)
    if (s->healthWatch()) s->close();
}

InferenceService::RawStream* InferenceService::ModelStreamInfer(Ctx* ctx) {
  // The plugin's health watch is never refused: a tenant's streams must not
  // make its slot look dead.
  bool healthWatch = ctx->client_metadata().count(kHealthWatchMetadata) > 0;
  size_t open = 0;
  {
    std::lock_guard lock(streamsMu_);
    for (Stream* st : streams_) open += st->healthWatch() ? 0 : 1;
  }
  if (!healthWatch && open >= ctx_.maxStreams)
    return new decoding::RefusedStream(Status(StatusCode::RESOURCE_EXHAUSTED,
                                    "slot " + ctx_.slotId() + " has " + std::to_string(open) +
                                        " ModelStreamInfer streams open, the limit (the agent's --max-streams)"));
  return new Stream(*this, ctx);
}

// A slot's own figures: what its tenant asked for, not its neighbours'
// (those are on the admin socket, summed over the device).
Status InferenceService::ModelStatistics(const inference::ModelStatisticsRequest& req, inference::ModelStatisticsResponse* resp) {
  return statisticsReply(req, ctx_.repository->index(),
                         [this](const std::string& name) -> std::optional<ModelStatisticsSnapshot> {
                           if (!ctx_.repository->statistics(name)) return std::nullopt;
                           return slotStats(name)->snapshot();
                         },
                         resp);
}

std::shared_ptr<ModelStatistics> InferenceService::slotStats(const std::string& model) {
  std::lock_guard lock(statsMu_);
  auto& s = stats_[model];
  if (!s) s = std::make_shared<agent::ModelStatistics>();
  return s;
}

Status InferenceService::RepositoryIndex(const inference::RepositoryIndexRequest& req, inference::RepositoryIndexResponse* resp) {
  // A slot sees only its own device's repository, by either name: none, or
  // "<class>/<device-id>" as on the admin socket.
  if (!req.repository_name().empty() && req.repository_name() != ctx_.repositoryName)
    return Status(StatusCode::NOT_FOUND, "repository '" + req.repository_name() + "': this slot serves only '" +
                                             ctx_.repositoryName + "'");
  for (const auto& e : ctx_.repository->index()) {
    if (req.ready() && e.state != "READY") continue;
    auto* m = resp->add_models();
    m->set_name(e.name);
    if (e.version > 0) m->set_version(std::to_string(e.version));
    m->set_state(e.state);
    m->set_reason(e.reason);
  }
  return Status::OK;
}

// Repository changes affect every tenant of the device: they are an admin
// operation, on the admin socket (admin_service.cpp), never on a slot's.
Status InferenceService::RepositoryModelLoad(const inference::RepositoryModelLoadRequest&, inference::RepositoryModelLoadResponse*) {
  return Status(StatusCode::PERMISSION_DENIED, kAdminOnly);
}

Status InferenceService::RepositoryModelUnload(const inference::RepositoryModelUnloadRequest&, inference::RepositoryModelUnloadResponse*) {
  return Status(StatusCode::PERMISSION_DENIED, kAdminOnly);
}

Status InferenceService::SystemSharedMemoryStatus(const inference::SystemSharedMemoryStatusRequest& req, inference::SystemSharedMemoryStatusResponse* resp) {
  std::vector<ShmRegionInfo> regions;
  Status s = shm_.status(req.name(), &regions);
  for (const auto& r : regions) {
    auto& out = (*resp->mutable_regions())[r.name];
    out.set_name(r.name);
    out.set_key(r.key);
    out.set_offset(r.offset);
    out.set_byte_size(r.byteSize);
  }
  return s;
}

Status InferenceService::SystemSharedMemoryRegister(const inference::SystemSharedMemoryRegisterRequest& req, inference::SystemSharedMemoryRegisterResponse*) {
  return shm_.registerRegion(req.name(), req.key(), req.offset(), req.byte_size());
}

Status InferenceService::SystemSharedMemoryUnregister(const inference::SystemSharedMemoryUnregisterRequest& req, inference::SystemSharedMemoryUnregisterResponse*) {
  return shm_.unregisterRegion(req.name());
}

}  // namespace kubeaccel::agent
