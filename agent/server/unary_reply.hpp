#pragma once
// Ends a unary callback RPC at once with `s` (the reply message already filled).

#include <grpcpp/grpcpp.h>

namespace kubeaccel::agent {

inline grpc::ServerUnaryReactor* finish(grpc::CallbackServerContext* ctx, const grpc::Status& s) {
  auto* r = ctx->DefaultReactor();
  r->Finish(s);
  return r;
}

}  // namespace kubeaccel::agent
