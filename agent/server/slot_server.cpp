#include "server/slot_server.hpp"
#include "server/slot_dir.hpp"
#include "server/slot_listener.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace kubeaccel::agent {

SlotServer::SlotServer(SlotContext ctx, int maxMessageBytes, size_t maxConnections)
    : socket_(ctx.slotDir + "/inference.sock") {
  prepareSlotDir(ctx.slotDir);  // the socket's name is free after this
  std::string slotId = ctx.slotId();
  service_ = std::make_unique<InferenceService>(std::move(ctx));
  // No listening port: the SlotListener accepts and hands connections over.
  grpc::ServerBuilder builder;
  builder.SetMaxReceiveMessageSize(maxMessageBytes);
  builder.SetMaxSendMessageSize(maxMessageBytes);
  builder.RegisterService(service_.get());
  server_ = builder.BuildAndStart();
  if (!server_) throw std::runtime_error("cannot start the gRPC server of " + socket_);
  try {
    listener_ = std::make_unique<SlotListener>(socket_, slotId, server_.get(), maxConnections);
  } catch (...) {
    server_->Shutdown();
    server_->Wait();
    throw;
  }
}

SlotServer::~SlotServer() { shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2)); }

void SlotServer::shutdown(std::chrono::system_clock::time_point deadline) {
  std::call_once(shutdownOnce_, [&] {
    listener_.reset();  // no new connections; the socket file goes
    service_->closeStreams();
    server_->Shutdown(deadline);
    server_->Wait();
  });
}

}  // namespace kubeaccel::agent
