#include "resource_state.hpp"

namespace kubeaccel {

void ResourceState::set(Devices devices) {
  std::lock_guard lock(mu_);
  if (devices == *current_) return;
  current_ = std::make_shared<const Devices>(std::move(devices));
  for (auto& [_, l] : listeners_) l(current_);
}

ResourceState::Snapshot ResourceState::get() const {
  std::lock_guard lock(mu_);
  return current_;
}

int ResourceState::subscribe(Listener l) {
  std::lock_guard lock(mu_);
  listeners_[nextToken_] = std::move(l);
  return nextToken_++;
}

void ResourceState::unsubscribe(int token) {
  std::lock_guard lock(mu_);
  listeners_.erase(token);
}

}  // namespace kubeaccel
