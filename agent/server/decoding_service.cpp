#include "server/decoding_service.hpp"

#include <google/protobuf/descriptor.h>

#include <stdexcept>

namespace kubeaccel::agent::decoding {

const google::protobuf::ServiceDescriptor& service(const std::string& fullName) {
  const auto* svc = google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(fullName);
  if (!svc) throw std::logic_error("no generated descriptor for service " + fullName);
  return *svc;
}

const google::protobuf::MethodDescriptor& unaryMethod(const google::protobuf::ServiceDescriptor& svc,
                                                      const google::protobuf::Descriptor& in,
                                                      const google::protobuf::Descriptor& out) {
  const google::protobuf::MethodDescriptor* found = nullptr;
  for (int i = 0; i < svc.method_count(); ++i) {
    const auto* m = svc.method(i);
    if (m->client_streaming() || m->server_streaming() || m->input_type() != &in || m->output_type() != &out)
      continue;
    if (found)
      throw std::logic_error(svc.full_name() + ": both " + found->name() + " and " + m->name() + " take " +
                             in.full_name() + " and give " + out.full_name());
    found = m;
  }
  if (!found)
    throw std::logic_error(svc.full_name() + " has no unary method from " + in.full_name() + " to " +
                           out.full_name());
  return *found;
}

const google::protobuf::MethodDescriptor& bidiMethod(const google::protobuf::ServiceDescriptor& svc,
                                                     const std::string& name) {
  const auto* m = svc.FindMethodByName(name);
  if (!m || !m->client_streaming() || !m->server_streaming())
    throw std::logic_error(svc.full_name() + " has no bidi-streaming method " + name);
  return *m;
}

grpc::Status notServed(const google::protobuf::MethodDescriptor& m) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, m.name() + " is not served on this socket");
}

}  // namespace kubeaccel::agent::decoding
