#include "agent_health.hpp"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <climits>
#include <condition_variable>

#include "inference/grpc_service.grpc.pb.h"

namespace kubeaccel {

// One slot's watch: ServerReady (waiting for the agent), then a held-open
// stream, in a loop until cancelled.
class AgentHealth::SlotWatch : public std::enable_shared_from_this<SlotWatch>,
                               public grpc::ClientBidiReactor<inference::ModelInferRequest,
                                                              inference::ModelStreamInferResponse> {
 public:
  SlotWatch(AgentHealth& owner, std::string id, std::string socket)
      : owner_(owner), id_(std::move(id)), socket_(std::move(socket)) {
    grpc::ChannelArguments args;
    // Reconnect quickly once the agent is back; never drop an idle connection.
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    args.SetInt(GRPC_ARG_CLIENT_IDLE_TIMEOUT_MS, INT_MAX);
    channel_ = grpc::CreateCustomChannel("unix://" + socket_, grpc::InsecureChannelCredentials(), args);
    stub_ = inference::GRPCInferenceService::NewStub(channel_);
  }

  void start() {
    self_ = shared_from_this();  // alive until the loop ends
    askReady();
  }

  void cancel() {
    std::lock_guard lock(mu_);
    cancelled_ = true;
    if (ctx_) ctx_->TryCancel();
  }

  void waitEnded() {
    std::unique_lock lock(mu_);
    endedCv_.wait(lock, [this] { return ended_; });
  }

  // Ready by the watch and not failing the new-connection check.
  bool ready() const {
    std::lock_guard lock(mu_);
    return ready_ && freshFailures_ < kFailuresToUnready;
  }

  // Starts one check from a new connection (a channel of its own, with its own
  // subchannel, so no connection of the watch is reused); `done` runs on a gRPC
  // thread once it is answered or has failed.
  void checkFresh(std::function<void()> done) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    auto channel = grpc::CreateCustomChannel("unix://" + socket_, grpc::InsecureChannelCredentials(), args);
    auto call = std::make_shared<FreshCall>();
    call->stub = inference::GRPCInferenceService::NewStub(channel);
    call->ctx.set_deadline(std::chrono::system_clock::now() + kCheckDeadline);
    auto self = shared_from_this();
    call->stub->async()->ServerReady(&call->ctx, &call->req, &call->resp,
                                     [self, call, done = std::move(done)](grpc::Status s) {
                                       if (s.ok() && !call->resp.ready())
                                         s = grpc::Status(grpc::StatusCode::UNAVAILABLE, "ServerReady answered false");
                                       self->freshResult(s);
                                       done();
                                     });
  }

 private:
  void askReady() {
    std::lock_guard lock(mu_);
    if (cancelled_) return end();
    ctx_ = std::make_unique<grpc::ClientContext>();
    ctx_->set_wait_for_ready(true);
    // Long, so a missing agent costs one wake-up an hour; cancel() ends it at once.
    ctx_->set_deadline(std::chrono::system_clock::now() + std::chrono::hours(1));
    stub_->async()->ServerReady(ctx_.get(), &readyReq_, &readyResp_, [this](grpc::Status s) { onReady(s); });
  }

  void onReady(const grpc::Status& s) {
    if (!s.ok()) {
      setReady(false);
      return askReady();  // deadline passed or cancelled; cancel is checked there
    }
    setReady(readyResp_.ready());
    std::lock_guard lock(mu_);
    if (cancelled_) return end();
    ctx_ = std::make_unique<grpc::ClientContext>();
    // Marks the stream as this watch, with the readiness it saw: the agent
    // ends it when the slot's ServerReady differs (a model loaded or
    // unloaded, now or since that answer), and we ask again.
    ctx_->AddMetadata("kubeaccel-health-watch", readyResp_.ready() ? "ready" : "not-ready");
    stub_->async()->ModelStreamInfer(ctx_.get(), this);
    StartRead(&streamResp_);
    StartCall();
  }

  struct FreshCall {
    std::unique_ptr<inference::GRPCInferenceService::Stub> stub;
    grpc::ClientContext ctx;
    inference::ServerReadyRequest req;
    inference::ServerReadyResponse resp;
  };

  void freshResult(const grpc::Status& s) {
    bool before, after;
    {
      std::lock_guard lock(mu_);
      before = ready_ && freshFailures_ < kFailuresToUnready;
      // Only a slot the watch finds ready can fail this check: a slot without
      // an agent is not ready anyway, and its count starts afresh.
      freshFailures_ = s.ok() || !ready_ ? 0 : freshFailures_ + 1;
      after = ready_ && freshFailures_ < kFailuresToUnready;
    }
    if (before == after) return;
    if (after)
      spdlog::info("agent slot {} answers a new connection again: ready", id_);
    else
      spdlog::warn("agent slot {} is not ready: {} new connections in a row were not answered (last: {})", id_,
                   kFailuresToUnready, s.error_message());
    owner_.changed();
  }

  void OnReadDone(bool) override {}  // we send nothing, so nothing comes back

  void OnDone(const grpc::Status&) override {
    setReady(false);  // the agent went away (or we cancelled)
    askReady();
  }

  void setReady(bool r) {
    {
      std::lock_guard lock(mu_);
      if (ready_ == r) return;
      ready_ = r;
      if (!r) freshFailures_ = 0;
    }
    spdlog::info("agent slot {} is {}", id_, r ? "ready" : "not ready");
    owner_.changed();
  }

  // Called with mu_ held. The canceller holds a reference until waitEnded()
  // returns (it needs mu_ for that), so dropping self_ here never destroys us.
  void end() {
    ended_ = true;
    self_.reset();
    endedCv_.notify_all();
  }

  AgentHealth& owner_;
  std::string id_;
  std::string socket_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<inference::GRPCInferenceService::Stub> stub_;
  mutable std::mutex mu_;
  std::condition_variable endedCv_;
  std::unique_ptr<grpc::ClientContext> ctx_;
  inference::ServerReadyRequest readyReq_;
  inference::ServerReadyResponse readyResp_;
  inference::ModelStreamInferResponse streamResp_;
  std::shared_ptr<SlotWatch> self_;
  bool ready_ = false, cancelled_ = false, ended_ = false;
  int freshFailures_ = 0;  // new-connection checks failed in a row while ready_
};

AgentHealth::AgentHealth(std::function<void()> onChange)
    : onChange_(std::move(onChange)), checker_([this] { checkLoop(); }) {}

AgentHealth::~AgentHealth() {
  {
    std::lock_guard lock(checkMu_);
    stopping_ = true;
  }
  checkCv_.notify_all();
  checker_.join();
  watch({});
}

void AgentHealth::checkLoop() {
  std::unique_lock lock(checkMu_);
  for (;;) {
    if (checkCv_.wait_for(lock, kCheckInterval, [this] { return stopping_; })) return;
    lock.unlock();
    std::vector<std::shared_ptr<SlotWatch>> slots;
    {
      std::lock_guard watchesLock(mu_);
      for (const auto& [_, w] : watches_) slots.push_back(w);
    }
    // All slots at once, then wait for every answer (each ends by its deadline),
    // so a round takes at most kCheckDeadline however many slots there are.
    std::mutex doneMu;
    std::condition_variable doneCv;
    std::size_t left = slots.size();
    for (auto& w : slots)
      w->checkFresh([&] {
        std::lock_guard l(doneMu);
        if (--left == 0) doneCv.notify_all();
      });
    {
      std::unique_lock l(doneMu);
      doneCv.wait(l, [&] { return left == 0; });
    }
    lock.lock();
  }
}

void AgentHealth::watch(const std::map<std::string, std::string>& slots) {
  std::vector<std::shared_ptr<SlotWatch>> gone, fresh;
  {
    std::lock_guard lock(mu_);
    for (auto it = watches_.begin(); it != watches_.end();) {
      if (slots.count(it->first)) {
        ++it;
        continue;
      }
      gone.push_back(std::move(it->second));
      it = watches_.erase(it);
    }
    for (const auto& [id, socket] : slots) {
      if (watches_.count(id)) continue;
      auto w = std::make_shared<SlotWatch>(*this, id, socket);
      watches_[id] = w;
      fresh.push_back(w);
    }
  }
  for (auto& w : fresh) w->start();
  for (auto& w : gone) w->cancel();
  for (auto& w : gone) w->waitEnded();
}

bool AgentHealth::ready(const std::string& slotId) const {
  std::lock_guard lock(mu_);
  auto it = watches_.find(slotId);
  return it != watches_.end() && it->second->ready();
}

void AgentHealth::changed() {
  if (onChange_) onChange_();
}

}  // namespace kubeaccel
