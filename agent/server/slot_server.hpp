#pragma once
// Serves one slot's socket: <agent-dir>/<class>/<device-id>/s<k>/inference.sock.

#include <memory>
#include <string>

#include <grpcpp/server.h>

#include "server/inference_service.hpp"

namespace kubeaccel::agent {

class SlotServer {
 public:
  // Creates the slot directory (0777: the pod's user, whoever it is, writes
  // shared-memory files there) and serves a fresh socket (0666) in it.
  // Throws std::runtime_error when it cannot.
  SlotServer(SlotContext ctx, int maxMessageBytes);
  // Stops serving and removes the socket, but keeps the directory: a running
  // pod has it mounted, and must find the next socket in the same place.
  ~SlotServer();

  const std::string& socketPath() const { return socket_; }

 private:
  std::string socket_;
  std::unique_ptr<InferenceService> service_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace kubeaccel::agent
