#pragma once
// The liveness/readiness probe behind `kubeaccel-plugin --probe` and
// `kubeaccel-agent --probe`. The daemon answers from its event loop (a
// wedged loop fails the probe) on a Unix socket file in the agent's 0700
// directory, where no other user can bind it (issue 10, section 8: probe
// squatting; an abstract name, shared by the whole host network namespace
// the DaemonSet runs in, could be taken by any process there and keep the
// daemon from starting). The prober also checks the answering peer's uid.

#include <functional>
#include <memory>
#include <string>

#include "util/event_loop.hpp"
#include "util/unique_fd.hpp"

namespace kubeaccel {

// The agent's probe socket: <agentDir>/probe.sock.
std::string agentProbePath(const std::string& agentDir);
// The plugin's: <agentDir>/plugin-probe.sock (the agent directory is the one
// kubeaccel directory on the node that no other user may write).
std::string pluginProbePath(const std::string& agentDir);

class ProbeServer {
 public:
  // `check` returns "" when healthy, else why not. `path`: a socket file in a
  // directory that exists. Throws std::runtime_error when another daemon for
  // the same directory answers on it. A file left by a daemon that is gone
  // is replaced; the socket file is made 0600 and removed by the destructor.
  ProbeServer(EventLoop& loop, const std::string& path, std::function<std::string()> check);
  ~ProbeServer();

 private:
  EventLoop& loop_;
  UniqueFd fd_;
  std::string path_;  // the socket file
  std::function<std::string()> check_;
};

// Asks the daemon on `path`; returns 0 when healthy, 1 otherwise, with the
// reason in `why`.
int probe(const std::string& path, std::string* why);

}  // namespace kubeaccel
