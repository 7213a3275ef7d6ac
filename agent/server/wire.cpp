#include "server/wire.hpp"

#include <google/protobuf/stubs/logging.h>
#include <grpcpp/impl/codegen/proto_utils.h>
#include <grpcpp/support/proto_buffer_reader.h>
#include <spdlog/spdlog.h>

#include <mutex>
#include <string>

namespace kubeaccel::agent {
namespace {

// Protobuf reports why a parse failed only to its log. While this thread
// decodes, its messages are captured here; other messages go to spdlog.
thread_local std::string* capture = nullptr;

void logHandler(google::protobuf::LogLevel level, const char* file, int line, const std::string& message) {
  if (capture) {
    if (!capture->empty()) *capture += "; ";
    *capture += message;
    return;
  }
  if (level >= google::protobuf::LOGLEVEL_ERROR)
    spdlog::error("protobuf: {} ({}:{})", message, file, line);
  else
    spdlog::debug("protobuf: {} ({}:{})", message, file, line);
}

// Protobuf's UTF-8 message ends with advice meant for the server's author.
std::string trimmed(std::string why) {
  auto pos = why.find(" Use the 'bytes' type");
  if (pos != std::string::npos) why.erase(pos);
  while (!why.empty() && (why.back() == ' ' || why.back() == '.')) why.pop_back();
  return why;
}

}  // namespace

grpc::Status decodeMessage(const grpc::ByteBuffer& in, google::protobuf::Message* out, const std::string& method) {
  static std::once_flag installed;
  std::call_once(installed, [] { google::protobuf::SetLogHandler(&logHandler); });
  grpc::ByteBuffer copy(in);  // shares the slices; the reader consumes its own buffer
  grpc::ProtoBufferReader reader(&copy);
  std::string why;
  capture = &why;
  bool ok = out->ParseFromZeroCopyStream(&reader);
  capture = nullptr;
  if (ok) return grpc::Status::OK;
  const std::string type = out->GetDescriptor()->full_name();
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                      method + ": the request is not a valid " + type + " message: " +
                          (why.empty() ? "the protobuf wire format is broken (a truncated or malformed field)"
                                       : trimmed(why)));
}

grpc::Status encodeMessage(const google::protobuf::Message& msg, grpc::ByteBuffer* out) {
  bool own = false;
  return grpc::SerializationTraits<google::protobuf::Message>::Serialize(msg, out, &own);
}

}  // namespace kubeaccel::agent
