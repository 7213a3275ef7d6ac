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
  SlotWatch(AgentHealth& owner, std::string id, std::string socket) : owner_(owner), id_(std::move(id)) {
    grpc::ChannelArguments args;
    // Reconnect quickly once the agent is back; never drop an idle connection.
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    args.SetInt(GRPC_ARG_CLIENT_IDLE_TIMEOUT_MS, INT_MAX);
    channel_ = grpc::CreateCustomChannel("unix://" + socket, grpc::InsecureChannelCredentials(), args);
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

  bool ready() const {
    std::lock_guard lock(mu_);
    return ready_;
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
};

AgentHealth::AgentHealth(std::function<void()> onChange) : onChange_(std::move(onChange)) {}

AgentHealth::~AgentHealth() { watch({}); }

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
