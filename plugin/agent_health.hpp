#pragma once
// Whether the agent serves each agent-mode slot: a slot is ready while its
// socket answers ServerReady with true. Two parts:
// - a watch per slot, event driven: ServerReady is asked with wait_for_ready
//   (it waits for the agent to come up), then a ModelStreamInfer stream is held
//   open, which ends the moment the agent goes away; then it starts over;
// - a check from a NEW connection (issue 10, section 3): every kCheckInterval,
//   a fresh channel per slot asks ServerReady within kCheckDeadline. An old
//   stream still open says nothing about whether the listener still accepts;
//   a slot that fails kFailuresToUnready checks in a row is not ready until
//   one is answered again.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace kubeaccel {

class AgentHealth {
 public:
  static constexpr std::chrono::milliseconds kCheckInterval{2000};
  static constexpr std::chrono::milliseconds kCheckDeadline{1000};
  static constexpr int kFailuresToUnready = 2;  // one slow answer on a loaded node is no outage

  // `onChange` runs on a gRPC thread whenever a slot's readiness changes.
  explicit AgentHealth(std::function<void()> onChange);
  ~AgentHealth();  // cancels every watch and waits for them to end

  // Watches exactly these slots: slot ID -> socket path.
  void watch(const std::map<std::string, std::string>& slots);
  bool ready(const std::string& slotId) const;

  class SlotWatch;

 private:
  friend class SlotWatch;
  void changed();
  void checkLoop();  // the new-connection checks, on checker_

  std::mutex checkMu_;
  std::condition_variable checkCv_;
  bool stopping_ = false;

  std::function<void()> onChange_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<SlotWatch>> watches_;
  std::thread checker_;  // last: starts once the rest is built
};

}  // namespace kubeaccel
