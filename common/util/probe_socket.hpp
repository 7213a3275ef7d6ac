#pragma once
// The liveness/readiness probe behind `kubeaccel-plugin --probe` and
// `kubeaccel-agent --probe`. The daemon answers on an abstract Unix socket
// (named after its state directory, so several daemons on one host do not
// clash; abstract sockets belong to the network namespace, which a pod's
// containers share) from its event loop: a wedged loop fails the probe.

#include <functional>
#include <memory>
#include <string>

#include "util/event_loop.hpp"
#include "util/unique_fd.hpp"

namespace kubeaccel {

// "kubeaccel-plugin" + "/var/lib/kubelet" -> a name in the abstract namespace.
std::string probeName(const std::string& daemon, const std::string& stateDir);

class ProbeServer {
 public:
  // `check` returns "" when healthy, else why not. Throws std::runtime_error
  // when the name is taken (another daemon for the same directory runs).
  ProbeServer(EventLoop& loop, const std::string& name, std::function<std::string()> check);
  ~ProbeServer();

 private:
  EventLoop& loop_;
  UniqueFd fd_;
  std::function<std::string()> check_;
};

// Asks the daemon; returns 0 when healthy, 1 otherwise, with the reason in `why`.
int probe(const std::string& name, std::string* why);

}  // namespace kubeaccel
