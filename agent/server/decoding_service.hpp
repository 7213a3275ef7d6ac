#pragma once
// A gRPC service whose methods all take raw bytes and decode them with
// `wire`, so that a request that does not decode is answered
// INVALID_ARGUMENT naming the method and saying why. gRPC's own decoding in
// a callback service answers UNIMPLEMENTED with an empty message, which
// tells a client nothing. What decodes is exactly what protobuf's parser
// (the one gRPC uses) accepts: unknown fields, and a known field sent with
// another wire type (kept as unknown), still decode.
//
// Handlers stay typed: a derived service registers each of its handlers
// with serve(), which finds the method by its request and response types in
// the service's descriptor. A method no handler serves answers UNIMPLEMENTED
// naming it.

#include <google/protobuf/descriptor.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/codegen/server_callback_handlers.h>

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "server/wire.hpp"

namespace kubeaccel::agent {

namespace decoding {

// The descriptor of the generated service `fullName` ("inference.GRPCInferenceService").
const google::protobuf::ServiceDescriptor& service(const std::string& fullName);
// The one unary method of `svc` that takes `in` and gives `out`;
// std::logic_error when there is none or more than one (a programming error).
const google::protobuf::MethodDescriptor& unaryMethod(const google::protobuf::ServiceDescriptor& svc,
                                                      const google::protobuf::Descriptor& in,
                                                      const google::protobuf::Descriptor& out);
// The bidi-streaming method `name` of `svc`; std::logic_error when there is none.
const google::protobuf::MethodDescriptor& bidiMethod(const google::protobuf::ServiceDescriptor& svc,
                                                     const std::string& name);
// What a method no handler serves answers.
grpc::Status notServed(const google::protobuf::MethodDescriptor& m);

// A stream refused at once with a status.
class RefusedStream final : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  explicit RefusedStream(const grpc::Status& s) { Finish(s); }
  void OnDone() override { delete this; }
};

}  // namespace decoding

// `Rpc` is a generated service class, e.g. inference::GRPCInferenceService.
template <class Rpc>
class DecodingService : public Rpc::Service {
 public:
  using Ctx = grpc::CallbackServerContext;
  // Ends a unary call: its response is sent when the status is OK.
  using Done = std::function<void(grpc::Status)>;
  using RawStream = grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>;

 protected:
  // Every method answers UNIMPLEMENTED naming it until a handler serves it.
  // Each method is marked raw once, here; serve() fills in its handler.
  DecodingService()
      : svc_(decoding::service(Rpc::service_full_name())),
        unary_(static_cast<size_t>(svc_.method_count())),
        streams_(static_cast<size_t>(svc_.method_count())) {
    for (int i = 0; i < svc_.method_count(); ++i) {
      const auto& m = *svc_.method(i);
      const auto k = static_cast<size_t>(i);
      if (!m.client_streaming() && !m.server_streaming()) {
        this->MarkMethodRawCallback(i, new grpc::internal::CallbackUnaryHandler<grpc::ByteBuffer, grpc::ByteBuffer>(
                                           [this, k, &m](Ctx* ctx, const grpc::ByteBuffer* in, grpc::ByteBuffer* out) {
                                             if (unary_[k]) return unary_[k](ctx, in, out);
                                             auto* r = ctx->DefaultReactor();
                                             r->Finish(decoding::notServed(m));
                                             return r;
                                           }));
      } else if (m.client_streaming() && m.server_streaming()) {
        this->MarkMethodRawCallback(i, new grpc::internal::CallbackBidiHandler<grpc::ByteBuffer, grpc::ByteBuffer>(
                                           [this, k, &m](Ctx* ctx) -> RawStream* {
                                             if (streams_[k]) return streams_[k](ctx);
                                             return new decoding::RefusedStream(decoding::notServed(m));
                                           }));
      } else {
        throw std::logic_error(m.full_name() + ": only unary and bidi-streaming methods are served");
      }
    }
  }

  // Serves the unary method from Req to Resp with `handler`, which answers
  // at once: its status, with `resp` sent when OK.
  template <class Self, class Req, class Resp>
  void serve(grpc::Status (Self::*handler)(const Req&, Resp*)) {
    auto* self = static_cast<Self*>(this);
    serveUnary<Req, Resp>([self, handler](Ctx*, const Req& req, Resp* resp, const Done& done) {
      done((self->*handler)(req, resp));
    });
  }

  // Serves the unary method from Req to Resp with `handler`, which answers
  // later, maybe from another thread, by calling `done` once. `req` and
  // `resp` live until then.
  template <class Self, class Req, class Resp>
  void serve(void (Self::*handler)(Ctx*, const Req&, Resp*, Done)) {
    auto* self = static_cast<Self*>(this);
    serveUnary<Req, Resp>([self, handler](Ctx* ctx, const Req& req, Resp* resp, const Done& done) {
      (self->*handler)(ctx, req, resp, done);
    });
  }

  // Serves the bidi-streaming method `name` with `handler`, whose reactor
  // decodes each message itself (decodeMessage).
  template <class Self>
  void serveStream(const std::string& name, RawStream* (Self::*handler)(Ctx*)) {
    auto* self = static_cast<Self*>(this);
    streams_[static_cast<size_t>(decoding::bidiMethod(svc_, name).index())] = [self, handler](Ctx* ctx) {
      return (self->*handler)(ctx);
    };
  }

 private:
  template <class Req, class Resp>
  using Typed = std::function<void(Ctx*, const Req&, Resp*, const Done&)>;

  template <class Req, class Resp>
  void serveUnary(Typed<Req, Resp> typed) {
    const auto& m = decoding::unaryMethod(svc_, *Req::descriptor(), *Resp::descriptor());
    // The request and response live with the call, until it is finished.
    struct Call {
      Req req;
      Resp resp;
    };
    unary_[static_cast<size_t>(m.index())] = [typed, &m](Ctx* ctx, const grpc::ByteBuffer* in,
                                                         grpc::ByteBuffer* out) -> grpc::ServerUnaryReactor* {
      auto* reactor = ctx->DefaultReactor();
      auto call = std::make_shared<Call>();
      if (grpc::Status s = decodeMessage(*in, &call->req, m.name()); !s.ok()) {
        reactor->Finish(s);
        return reactor;
      }
      typed(ctx, call->req, &call->resp, [reactor, call, out](grpc::Status s) {
        if (s.ok()) s = encodeMessage(call->resp, out);
        reactor->Finish(s);
      });
      return reactor;
    };
  }

  const google::protobuf::ServiceDescriptor& svc_;
  // What each method (by index) does with a call; empty when not served.
  std::vector<std::function<grpc::ServerUnaryReactor*(Ctx*, const grpc::ByteBuffer*, grpc::ByteBuffer*)>> unary_;
  std::vector<std::function<RawStream*(Ctx*)>> streams_;
};

}  // namespace kubeaccel::agent
