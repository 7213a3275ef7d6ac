#pragma once
// The agent directory (--agent-dir), which both daemons use: the agent keeps
// its slots and probe there, the plugin its probe. Whichever starts first
// makes it.

#include <string>

namespace kubeaccel {

// Creates `dir` (and its parents) if missing and makes it mode 0700: node
// users must not reach the slot directories, where a pod may leave a setuid
// file (issue 10, section 5), nor bind the probe sockets (section 8). Pods
// get their slot through a bind mount the runtime makes as root, which no
// parent's mode stops; both daemons run as the directory's owner. Throws
// std::runtime_error when it cannot be created; a failed chmod is logged.
void prepareAgentDirectory(const std::string& dir);

// The agent's admin socket in `dir`: <dir>/admin.sock, made absolute (a
// gRPC "unix:" target reads a relative path's first folder as a host name).
std::string adminSocketPath(const std::string& dir);

}  // namespace kubeaccel
