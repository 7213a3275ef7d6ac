#include "server/slot_server.hpp"

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

SlotServer::SlotServer(SlotContext ctx, int maxMessageBytes) : socket_(ctx.slotDir + "/inference.sock") {
  std::error_code ec;
  std::filesystem::create_directories(ctx.slotDir, ec);
  if (ec) throw std::runtime_error("cannot create " + ctx.slotDir + ": " + ec.message());
  if (::chmod(ctx.slotDir.c_str(), 0777) != 0)
    throw std::runtime_error("cannot chmod " + ctx.slotDir + ": " + std::strerror(errno));
  ::unlink(socket_.c_str());  // left by an agent that did not stop cleanly
  service_ = std::make_unique<InferenceService>(std::move(ctx));
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + socket_, grpc::InsecureServerCredentials());
  builder.SetMaxReceiveMessageSize(maxMessageBytes);
  builder.SetMaxSendMessageSize(maxMessageBytes);
  builder.RegisterService(service_.get());
  server_ = builder.BuildAndStart();
  if (!server_) throw std::runtime_error("cannot serve on " + socket_);
  // Any container user may connect: only the pod that owns the slot has it mounted.
  ::chmod(socket_.c_str(), 0666);
}

SlotServer::~SlotServer() { shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2)); }

void SlotServer::shutdown(std::chrono::system_clock::time_point deadline) {
  std::call_once(shutdownOnce_, [&] {
    service_->closeStreams();
    server_->Shutdown(deadline);
    server_->Wait();
    ::unlink(socket_.c_str());
  });
}

}  // namespace kubeaccel::agent
