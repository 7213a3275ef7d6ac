#pragma once
// Serves one slot's socket: <agent-dir>/<class>/<device-id>/s<k>/inference.sock.

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include <grpcpp/server.h>

#include "server/inference_service.hpp"
#include "server/slot_listener.hpp"

namespace kubeaccel::agent {

class SlotServer {
 public:
  // Lays out the slot directory (slot_dir.hpp: the tenant writes only in
  // shm/) and serves a fresh socket (0666) in it. Throws std::runtime_error
  // naming the path and the reason when it cannot.
  // At most `maxConnections` tenant connections at a time (SlotListener).
  SlotServer(SlotContext ctx, int maxMessageBytes, size_t maxConnections);
  // Stops serving and removes the socket, but keeps the directory: a running
  // pod has it mounted, and must find the next socket in the same place.
  ~SlotServer();

  // Ends the slot's streams once their answers are written, refuses new
  // calls, and returns when every call has finished. Calls still in flight
  // at `deadline` are cancelled, but a call waiting in the device's queue
  // finishes only when the scheduler answers it (DeviceScheduler::drain), so
  // run this while something drains the queue. Idempotent.
  void shutdown(std::chrono::system_clock::time_point deadline);

  const std::string& socketPath() const { return socket_; }
  InferenceService& service() { return *service_; }

 private:
  std::string socket_;
  std::unique_ptr<InferenceService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<SlotListener> listener_;
  std::once_flag shutdownOnce_;
};

}  // namespace kubeaccel::agent
