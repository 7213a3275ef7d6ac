#pragma once
// The models each agent-mode device serves now, as the agent says on its
// admin socket, for `kubeaccel devices`.

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace kubeaccel {

// What the agent answered: READY models by device key ("<class>/<device-id>",
// the agent's name for that device's repository). `unreachable` says why
// nothing is known (no agent, or a caller that may not open the 0600 admin
// socket); a device the agent does not serve is in `notServed` instead, with
// the agent's answer (which names the devices it does serve).
struct ServedModels {
  std::map<std::string, std::vector<std::string>> byDevice;
  std::map<std::string, std::string> notServed;
  std::string unreachable;
};

// Asks <agentDir>/admin.sock for each key's index (KServe v2 RepositoryIndex,
// repository_name = key, ready only), each call within `timeout`.
ServedModels servedModels(const std::string& agentDir, const std::vector<std::string>& deviceKeys,
                          std::chrono::milliseconds timeout);

}  // namespace kubeaccel
