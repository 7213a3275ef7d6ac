#pragma once
// A slot's listening socket, accepted by the agent itself rather than by
// gRPC, so that no tenant can break it (issue 10, section 3):
//   - a failed accept (EMFILE when the agent is out of descriptors, ENOBUFS,
//     ...) is logged and retried after a pause; the listener never gives up,
//     where gRPC's own listener stopped accepting for good;
//   - a slot holds at most `maxConnections` connections at a time; one more
//     is closed at once and logged, naming the slot and the limit. The agent's
//     own connections (its health checks) are exempt, so a full slot is not
//     mistaken for a dead one.
// Each accepted connection is handed to the slot's gRPC server
// (AddInsecureChannelFromFd). To know when it ends, the listener keeps a
// duplicate of its descriptor and waits for the peer to hang up.

#include <sys/types.h>

#include <atomic>
#include <set>
#include <string>
#include <thread>

#include <grpcpp/server.h>

#include "util/unique_fd.hpp"

namespace kubeaccel::agent {

class SlotListener {
 public:
  // Binds `path` (mode `mode`; the name must be free) and starts accepting
  // into `server`, which must outlive the listener. Throws std::runtime_error
  // naming the path when it cannot bind. (The admin socket uses it too, 0600.)
  SlotListener(std::string path, std::string slotId, grpc::Server* server, size_t maxConnections,
               mode_t mode = 0666);
  // Stops accepting and removes the socket file; connections already handed
  // to gRPC end with the server.
  ~SlotListener();
  SlotListener(const SlotListener&) = delete;
  SlotListener& operator=(const SlotListener&) = delete;

  // Connections open now (the agent's own included).
  size_t connections() const { return open_.load(); }

 private:
  void run();
  void acceptOne();

  const std::string path_, slotId_;
  grpc::Server* server_;
  const size_t max_;
  UniqueFd listen_, epoll_, stop_;
  std::atomic<size_t> open_{0};
  size_t refused_ = 0;      // connections refused over the limit
  size_t unwatchable_ = 0;  // connections closed for want of descriptors (logged 1 in 1000)
  std::set<int> watched_;  // our duplicates of the open connections (the thread's own)
  std::thread thread_;
};

}  // namespace kubeaccel::agent
