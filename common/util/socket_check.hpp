#pragma once
// Whether a gRPC server answers a NEW connection on a Unix socket: the check
// behind the agent's probe and its slot watchdog (issue 10, section 3). A
// socket file that exists, or a connection opened long ago that still works,
// says nothing about whether the listener still accepts.

#include <chrono>
#include <string>
#include <vector>

namespace kubeaccel {

// Opens a new connection to each socket at once, sends the HTTP/2 client
// preface and waits, until `timeout` overall, for the server's SETTINGS
// frame (the first thing a gRPC server answers). Returns, per socket, "" when
// answered, else why not ("connect: Connection refused", "no answer within
// 1000 ms", ...).
std::vector<std::string> checkNewConnections(const std::vector<std::string>& sockets,
                                             std::chrono::milliseconds timeout);

}  // namespace kubeaccel
