#pragma once
// The liveness/readiness probe behind `kubeaccel-plugin --probe` and
// `kubeaccel-agent --probe`. The daemon answers from its event loop (a
// wedged loop fails the probe) on a Unix socket: the agent's is a file in
// its 0700 directory, where no other user can bind it (issue 10, section 8:
// probe squatting); the plugin's is an abstract name (named after its state
// directory, so several daemons on one host do not clash; abstract sockets
// belong to the network namespace, which a pod's containers share), which
// any process there could take, so the prober also checks the answering
// peer's uid.

#include <functional>
#include <memory>
#include <string>

#include "util/event_loop.hpp"
#include "util/unique_fd.hpp"

namespace kubeaccel {

// "kubeaccel-plugin" + "/var/lib/kubelet" -> a name in the abstract namespace.
std::string probeName(const std::string& daemon, const std::string& stateDir);

// The agent's probe socket: <agentDir>/probe.sock. A name that starts with
// '/' is a file system path to ProbeServer and probe(); any other name is
// abstract.
std::string agentProbePath(const std::string& agentDir);

class ProbeServer {
 public:
  // `check` returns "" when healthy, else why not. Throws std::runtime_error
  // when the name is taken (another daemon for the same directory runs, or
  // answers on the path). A path left by a daemon that is gone is replaced;
  // the socket file is made 0600 and removed again by the destructor.
  ProbeServer(EventLoop& loop, const std::string& name, std::function<std::string()> check);
  ~ProbeServer();

 private:
  EventLoop& loop_;
  UniqueFd fd_;
  std::string path_;  // the socket file, for a path name
  std::function<std::string()> check_;
};

// Asks the daemon; returns 0 when healthy, 1 otherwise, with the reason in `why`.
int probe(const std::string& name, std::string* why);

}  // namespace kubeaccel
