#include "resource_server.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <stdexcept>

namespace kubeaccel {
namespace {
ino_t inodeOf(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}
}  // namespace

ResourceServer::ResourceServer(std::string socketPath, std::string resourceName, const DeviceClass& cls,
                               ResourceState& state, AllocationPaths paths, const std::atomic<bool>* cdiReady)
    : socketPath_(std::move(socketPath)),
      resource_(std::move(resourceName)),
      cls_(cls),
      state_(state),
      paths_(std::move(paths)),
      cdiReady_(cdiReady) {}

ResourceServer::~ResourceServer() { stop(); }

void ResourceServer::start() {
  stop();
  ::unlink(socketPath_.c_str());  // a stale socket from an earlier run
  service_ = std::make_unique<DevicePluginService>(resource_, cls_, state_, paths_, cdiReady_);
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + socketPath_, grpc::InsecureServerCredentials());
  builder.RegisterService(service_.get());
  server_ = builder.BuildAndStart();
  if (!server_) {
    service_.reset();
    throw std::runtime_error("cannot serve on " + socketPath_);
  }
  inode_ = inodeOf(socketPath_);
  spdlog::debug("{}: serving on {}", resource_, socketPath_);
}

void ResourceServer::stop() {
  if (!server_) return;
  service_->finishStreams();
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
  server_->Wait();
  server_.reset();
  service_.reset();
  if (inode_ != 0 && inodeOf(socketPath_) == inode_) ::unlink(socketPath_.c_str());
  inode_ = 0;
}

bool ResourceServer::intact() const { return server_ && inode_ != 0 && inodeOf(socketPath_) == inode_; }

}  // namespace kubeaccel
