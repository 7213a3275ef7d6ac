#pragma once
// Whether the agent serves each agent-mode slot: a slot is ready while its
// socket answers ServerReady with true. Event driven: ServerReady is asked
// with wait_for_ready (it waits for the agent to come up), then a
// ModelStreamInfer stream is held open, which ends the moment the agent goes
// away; then it starts over. Nothing polls.

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace kubeaccel {

class AgentHealth {
 public:
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

  std::function<void()> onChange_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<SlotWatch>> watches_;
};

}  // namespace kubeaccel
