#include "kubelet_standin.hpp"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <regex>

namespace kubeaccel::testing {

class KubeletStandin::RegistrationService final : public v1beta1::Registration::Service {
 public:
  explicit RegistrationService(KubeletStandin& k) : k_(k) {}
  grpc::Status Register(grpc::ServerContext*, const v1beta1::RegisterRequest* req, v1beta1::Empty*) override {
    return k_.onRegister(*req);
  }

 private:
  KubeletStandin& k_;
};

KubeletStandin::KubeletStandin(std::string dir) : dir_(std::move(dir)) {}

KubeletStandin::~KubeletStandin() { stop(); }

void KubeletStandin::start() {
  ::unlink(socketPath().c_str());
  service_ = std::make_unique<RegistrationService>(*this);
  grpc::ServerBuilder b;
  b.AddListeningPort("unix:" + socketPath(), grpc::InsecureServerCredentials());
  b.RegisterService(service_.get());
  server_ = b.BuildAndStart();
  if (!server_) throw std::runtime_error("kubelet stand-in: cannot serve on " + socketPath());
}

void KubeletStandin::stop() {
  if (server_) {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    server_->Wait();
    server_.reset();
  }
  dropEndpoints();
  ::unlink(socketPath().c_str());
}

void KubeletStandin::restart() {
  stop();
  // A starting kubelet removes everything in device-plugins/ but its checkpoint.
  if (DIR* d = ::opendir(dir_.c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name == "." || name == ".." || name == "kubelet_internal_checkpoint") continue;
      ::unlink((dir_ + "/" + name).c_str());
    }
    ::closedir(d);
  }
  start();
}

void KubeletStandin::dropEndpoints() {
  std::map<std::string, std::unique_ptr<Endpoint>> eps;
  std::vector<std::unique_ptr<Endpoint>> retired;
  {
    std::lock_guard lock(mu_);
    eps.swap(endpoints_);
    retired.swap(retired_);
  }
  for (auto& [_, ep] : eps) retired.push_back(std::move(ep));
  for (auto& ep : retired) {
    if (ep->streamCtx) ep->streamCtx->TryCancel();
    if (ep->reader.joinable()) ep->reader.join();
  }
}

grpc::Status KubeletStandin::onRegister(const v1beta1::RegisterRequest& req) {
  auto reject = [&](const std::string& why) {
    std::lock_guard lock(mu_);
    errors_.push_back(req.resource_name() + ": " + why);
    cv_.notify_all();
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, why);
  };
  {
    std::lock_guard lock(mu_);
    if (failRegistrations_ > 0) {
      --failRegistrations_;
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "refused by test");
    }
  }
  if (req.version() != "v1beta1") return reject("unsupported API version '" + req.version() + "'");
  static const std::regex kResource("[a-z0-9.-]+/[a-z0-9]([-a-z0-9]*[a-z0-9])?");
  if (!std::regex_match(req.resource_name(), kResource))
    return reject("invalid resource name '" + req.resource_name() + "'");
  if (req.endpoint().empty() || req.endpoint().find('/') != std::string::npos)
    return reject("invalid endpoint '" + req.endpoint() + "'");

  // Dial back before answering, as current kubelets do.
  auto ep = std::make_unique<Endpoint>();
  ep->channel = grpc::CreateChannel("unix://" + dir_ + "/" + req.endpoint(), grpc::InsecureChannelCredentials());
  auto stub = v1beta1::DevicePlugin::NewStub(ep->channel);
  v1beta1::DevicePluginOptions opts;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    grpc::Status s = stub->GetDevicePluginOptions(&ctx, v1beta1::Empty(), &opts);
    if (!s.ok()) return reject("GetDevicePluginOptions failed: " + s.error_message());
  }

  ep->streamCtx = std::make_unique<grpc::ClientContext>();
  Endpoint* raw = ep.get();
  std::unique_ptr<Endpoint> previous;
  {
    std::lock_guard lock(mu_);
    auto& r = resources_[req.resource_name()];
    r.endpoint = req.endpoint();
    r.options = opts;
    r.registrations++;
    r.lastRegistered = std::chrono::steady_clock::now();
    auto it = endpoints_.find(req.resource_name());
    if (it != endpoints_.end()) previous = std::move(it->second);
    endpoints_[req.resource_name()] = std::move(ep);
  }
  if (previous) {
    // A re-registration replaces the old endpoint.
    previous->streamCtx->TryCancel();
    std::lock_guard lock(mu_);
    retired_.push_back(std::move(previous));
  }
  raw->reader = std::thread(&KubeletStandin::readStream, this, req.resource_name(), raw, std::move(stub));
  cv_.notify_all();
  return grpc::Status::OK;
}

void KubeletStandin::readStream(const std::string& resource, Endpoint* ep,
                                std::unique_ptr<v1beta1::DevicePlugin::Stub> stub) {
  auto reader = stub->ListAndWatch(ep->streamCtx.get(), v1beta1::Empty());
  {
    std::lock_guard lock(mu_);
    resources_[resource].streamOpen = true;
  }
  v1beta1::ListAndWatchResponse msg;
  while (reader->Read(&msg)) {
    std::vector<Device> devices;
    for (const auto& d : msg.devices()) {
      Device dev{d.id(), d.health(), {}};
      for (const auto& n : d.topology().nodes()) dev.numaNodes.push_back(n.id());
      devices.push_back(std::move(dev));
    }
    std::lock_guard lock(mu_);
    auto& r = resources_[resource];
    if (endpoints_.count(resource) && endpoints_[resource].get() != ep) break;  // superseded
    r.devices = std::move(devices);
    r.updates++;
    r.lastUpdate = std::chrono::steady_clock::now();
    cv_.notify_all();
  }
  reader->Finish();
  std::lock_guard lock(mu_);
  auto it = endpoints_.find(resource);
  if (it != endpoints_.end() && it->second.get() == ep) {
    // The kubelet marks every device of a broken stream Unhealthy.
    auto& r = resources_[resource];
    for (auto& d : r.devices) d.health = "Unhealthy";
    r.streamOpen = false;
  }
  cv_.notify_all();
}

bool KubeletStandin::waitFor(const std::function<bool(const std::map<std::string, Resource>&)>& pred,
                             std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return pred(resources_); });
}

bool KubeletStandin::waitForRegistrations(const std::string& resource, int count,
                                          std::chrono::milliseconds timeout) {
  return waitFor(
      [&](const auto& rs) {
        auto it = rs.find(resource);
        return it != rs.end() && it->second.registrations >= count && it->second.streamOpen;
      },
      timeout);
}

std::map<std::string, KubeletStandin::Resource> KubeletStandin::resources() const {
  std::lock_guard lock(mu_);
  return resources_;
}

std::vector<std::string> KubeletStandin::registrationErrors() const {
  std::lock_guard lock(mu_);
  return errors_;
}

void KubeletStandin::failRegistrations(int n) {
  std::lock_guard lock(mu_);
  failRegistrations_ = n;
}

std::unique_ptr<v1beta1::DevicePlugin::Stub> KubeletStandin::stubFor(const std::string& resource) {
  std::lock_guard lock(mu_);
  auto it = endpoints_.find(resource);
  if (it == endpoints_.end()) return nullptr;
  return v1beta1::DevicePlugin::NewStub(it->second->channel);
}

grpc::Status KubeletStandin::allocate(const std::string& resource, const std::vector<std::string>& ids,
                                      v1beta1::AllocateResponse* out) {
  auto stub = stubFor(resource);
  if (!stub) return grpc::Status(grpc::StatusCode::NOT_FOUND, "no plugin registered for " + resource);
  v1beta1::AllocateRequest req;
  auto* c = req.add_container_requests();  // one container per call, as the kubelet does
  for (const auto& id : ids) c->add_devices_ids(id);
  grpc::ClientContext ctx;  // the kubelet sets no deadline on Allocate
  return stub->Allocate(&ctx, req, out);
}

grpc::Status KubeletStandin::preferredAllocation(const std::string& resource,
                                                 const std::vector<std::string>& available,
                                                 const std::vector<std::string>& mustInclude, int size,
                                                 std::vector<std::string>* out) {
  auto stub = stubFor(resource);
  if (!stub) return grpc::Status(grpc::StatusCode::NOT_FOUND, "no plugin registered for " + resource);
  v1beta1::PreferredAllocationRequest req;
  auto* c = req.add_container_requests();
  for (const auto& id : available) c->add_available_deviceids(id);
  for (const auto& id : mustInclude) c->add_must_include_deviceids(id);
  c->set_allocation_size(size);
  v1beta1::PreferredAllocationResponse resp;
  grpc::ClientContext ctx;
  grpc::Status s = stub->GetPreferredAllocation(&ctx, req, &resp);
  if (s.ok() && resp.container_responses_size() == 1)
    out->assign(resp.container_responses(0).deviceids().begin(), resp.container_responses(0).deviceids().end());
  return s;
}

grpc::Status KubeletStandin::preStartContainer(const std::string& resource, const std::vector<std::string>& ids) {
  auto stub = stubFor(resource);
  if (!stub) return grpc::Status(grpc::StatusCode::NOT_FOUND, "no plugin registered for " + resource);
  v1beta1::PreStartContainerRequest req;
  for (const auto& id : ids) req.add_devices_ids(id);
  v1beta1::PreStartContainerResponse resp;
  grpc::ClientContext ctx;
  return stub->PreStartContainer(&ctx, req, &resp);
}

std::string healthOf(const std::map<std::string, KubeletStandin::Resource>& rs, const std::string& resource,
                     const std::string& id) {
  auto it = rs.find(resource);
  if (it == rs.end()) return "";
  for (const auto& d : it->second.devices)
    if (d.id == id) return d.health;
  return "";
}

std::vector<std::string> idsOf(const std::map<std::string, KubeletStandin::Resource>& rs,
                               const std::string& resource) {
  std::vector<std::string> out;
  if (auto it = rs.find(resource); it != rs.end())
    for (const auto& d : it->second.devices) out.push_back(d.id);
  return out;
}

}  // namespace kubeaccel::testing
