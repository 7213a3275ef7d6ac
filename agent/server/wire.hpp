#pragma once
// Messages to and from the wire: the agent decodes every request itself
// (decoding_service.hpp), since gRPC's own decoding answers an undecodable
// request UNIMPLEMENTED with no message, which tells a client nothing.

#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/status.h>

#include <google/protobuf/message.h>

#include <string>

namespace kubeaccel::agent {

// Parses `in`, a request to `method` ("ModelInfer"), into `out`.
// INVALID_ARGUMENT when the bytes are not a valid `out` message, naming the
// method and saying why where protobuf says (e.g. "String field
// 'inference.ModelInferRequest.InferInputTensor.name' contains invalid UTF-8
// data"), else that the wire format is broken.
grpc::Status decodeMessage(const grpc::ByteBuffer& in, google::protobuf::Message* out, const std::string& method);

// Serializes `msg` into `out`; INTERNAL if protobuf cannot.
grpc::Status encodeMessage(const google::protobuf::Message& msg, grpc::ByteBuffer* out);

}  // namespace kubeaccel::agent
