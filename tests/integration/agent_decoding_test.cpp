// Requests that do not decode (issue 9, section 11): every method of a
// slot's socket and of the admin socket answers one INVALID_ARGUMENT naming
// the method and saying why; gRPC's own decoding answered UNIMPLEMENTED with
// no message. What decodes is exactly what protobuf's parser (the one any
// gRPC server uses) accepts, so unknown fields still work.
#include "agent_fixture.hpp"

#include <google/protobuf/descriptor.h>
#include <grpcpp/generic/generic_stub.h>

#include <future>

#include "kubeaccel/admin/v1/admin.grpc.pb.h"

namespace kubeaccel::testing {
namespace {

using google::protobuf::MethodDescriptor;
using google::protobuf::ServiceDescriptor;

// One unary call of raw bytes, as a client with a broken encoder would send it.
struct RawReply {
  grpc::Status status;
  std::string body;
};
class RawClient {
 public:
  explicit RawClient(const std::string& socket)
      : stub_(grpc::CreateChannel("unix://" + socket, grpc::InsecureChannelCredentials())) {}
  RawReply call(const MethodDescriptor& m, const std::string& bytes) {
    grpc::Slice slice(bytes);
    grpc::ByteBuffer req(&slice, 1), resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    std::promise<grpc::Status> done;
    stub_.UnaryCall(&ctx, "/" + m.service()->full_name() + "/" + m.name(), grpc::StubOptions(), &req, &resp,
                    [&](grpc::Status s) { done.set_value(s); });
    RawReply r{done.get_future().get(), ""};
    std::vector<grpc::Slice> slices;
    if (r.status.ok() && resp.Dump(&slices).ok())
      for (const auto& s : slices) r.body.append(reinterpret_cast<const char*>(s.begin()), s.size());
    return r;
  }

 private:
  grpc::GenericStub stub_;
};

struct Bytes {
  std::string what, bytes;
};

// Bytes that no message decodes, whatever its fields: the kinds of broken
// encoding there are, not one instance.
std::vector<Bytes> undecodable() {
  return {
      {"a truncated varint", std::string("\x08\xff", 2)},
      {"a length prefix past the end", std::string("\x0a\x05"
                                                   "ab",
                                                   4)},
      {"a length prefix of 2^28 - 1", std::string("\x0a\xff\xff\xff\x7f", 5)},
      {"a truncated fixed64", std::string("\x09\x01\x02", 3)},
      {"wire type 7", std::string("\x0f", 1)},
      {"a group end with no start", std::string("\x0c", 1)},
  };
}

// Bytes that every message decodes: protobuf keeps fields it does not know
// aside, and a known field sent with another wire type is one it does not know.
std::vector<Bytes> decodable() {
  return {
      {"no bytes", ""},
      {"unknown varint field 1000", std::string("\xc0\x3e\x01", 3)},
      {"unknown length-delimited field 999", std::string("\xba\x3e\x03"
                                                         "abc",
                                                         6)},
      {"field 1 as fixed32", std::string("\x0d\x01\x02\x03\x04", 5)},
  };
}

// A message with an unknown field after its own: what a newer client sends.
template <class M>
std::string withUnknownField(const M& m) {
  return m.SerializeAsString() + std::string("\xba\x3e\x03"
                                             "abc",
                                             6);
}

const ServiceDescriptor& inferenceService() {
  return *inference::ServerLiveRequest::descriptor()->file()->FindServiceByName("GRPCInferenceService");
}
const MethodDescriptor& handOverSlot() {
  return *admin::v1::HandOverSlotRequest::descriptor()->file()->FindServiceByName("SlotAdmin")->FindMethodByName(
      "HandOverSlot");
}

// The premise of the cases: protobuf refuses `undecodable()` and accepts
// `decodable()` as a request of `m`.
void checkPremise(const MethodDescriptor& m) {
  std::unique_ptr<google::protobuf::Message> msg(
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(m.input_type())->New());
  for (const auto& b : undecodable()) ASSERT_FALSE(msg->ParseFromString(b.bytes)) << m.name() << ": " << b.what;
  for (const auto& b : decodable()) ASSERT_TRUE(msg->ParseFromString(b.bytes)) << m.name() << ": " << b.what;
}

// Every undecodable case on `m` is INVALID_ARGUMENT naming the method and the
// message type.
void expectRefusedAsUndecodable(RawClient& c, const MethodDescriptor& m) {
  for (const auto& b : undecodable()) {
    RawReply r = c.call(m, b.bytes);
    EXPECT_EQ(codeName(r.status.error_code()), "INVALID_ARGUMENT") << m.name() << " with " << b.what;
    EXPECT_EQ(r.status.error_message().rfind(m.name() + ": the request is not a valid " +
                                                 m.input_type()->full_name() + " message: ",
                                             0),
              0u)
        << m.name() << " with " << b.what << ": " << r.status.error_message();
  }
}

// Every decodable case on `m` is answered as the empty request is: decoded.
void expectDecodedAsEmpty(RawClient& c, const MethodDescriptor& m) {
  const RawReply empty = c.call(m, "");
  for (const auto& b : decodable()) {
    RawReply r = c.call(m, b.bytes);
    EXPECT_EQ(codeName(r.status.error_code()), codeName(empty.status.error_code())) << m.name() << " with " << b.what;
    EXPECT_EQ(r.status.error_message().find("is not a valid"), std::string::npos)
        << m.name() << " with " << b.what << ": " << r.status.error_message();
  }
}

TEST_F(AgentTest, EveryMethodOfASlotAnswersAnUndecodableRequestInvalidArgumentNamingIt) {
  startAgent();
  RawClient c(socket(0));
  const auto& svc = inferenceService();
  int checked = 0;
  for (int i = 0; i < svc.method_count(); ++i) {
    const auto& m = *svc.method(i);
    // ModelStreamInfer answers on the stream: UndecodableRequestsAreInvalidArgumentWithTheReason.
    if (m.client_streaming() || m.server_streaming()) continue;
    SCOPED_TRACE(m.name());
    ASSERT_NO_FATAL_FAILURE(checkPremise(m));
    expectRefusedAsUndecodable(c, m);
    expectDecodedAsEmpty(c, m);
    ++checked;
  }
  EXPECT_EQ(checked, svc.method_count() - 1);
  RawReply r = c.call(*svc.FindMethodByName("ModelInfer"), std::string("\x0a\xff\xff\xff\x7f", 5));
  std::cout << "[ agent    ] " << checked << " unary methods checked; e.g. " << r.status.error_message() << "\n";
}

// A valid request with fields the agent does not know is served as without them.
TEST_F(AgentTest, RequestsWithUnknownFieldsAreServed) {
  startAgent();
  RawClient c(socket(0));
  const auto& svc = inferenceService();

  RawReply r = c.call(*svc.FindMethodByName("ServerLive"), withUnknownField(inference::ServerLiveRequest{}));
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  inference::ServerLiveResponse live;
  ASSERT_TRUE(live.ParseFromString(r.body));
  EXPECT_TRUE(live.live());

  inference::ModelReadyRequest ready;
  ready.set_name("tiny");
  r = c.call(*svc.FindMethodByName("ModelReady"), withUnknownField(ready));
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  inference::ModelReadyResponse readyResp;
  ASSERT_TRUE(readyResp.ParseFromString(r.body));
  EXPECT_TRUE(readyResp.ready());

  auto x = randomFloats(4, 31);
  r = c.call(*svc.FindMethodByName("ModelInfer"), withUnknownField(inferRequest("tiny", "x", {1, 4}, bytesOf(x))));
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  inference::ModelInferResponse inferResp;
  ASSERT_TRUE(inferResp.ParseFromString(r.body));
  ASSERT_EQ(inferResp.raw_output_contents_size(), 1);
  Reference tiny(modelFile("tiny"), "x", "y");
  EXPECT_LE(maxAbsDiff(floatsOf(inferResp.raw_output_contents(0)), tiny.run({1, 4}, x)), kTolerance);

  // The admin socket's services decode the same way.
  RawClient admin(adminSocket());
  r = admin.call(*svc.FindMethodByName("ServerLive"), withUnknownField(inference::ServerLiveRequest{}));
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  admin::v1::HandOverSlotRequest handOver;
  handOver.set_class_name("no-such-class");
  handOver.set_device_id("none");
  r = admin.call(handOverSlot(), withUnknownField(handOver));
  EXPECT_EQ(codeName(r.status.error_code()), "NOT_FOUND") << r.status.error_message();
  EXPECT_NE(r.status.error_message().find("no-such-class/none"), std::string::npos) << r.status.error_message();
}

// The admin socket: the methods it serves decode as a slot's do; the others
// are UNIMPLEMENTED, saying which method, whatever the bytes.
TEST_F(AgentTest, EveryMethodOfTheAdminSocketAnswersAnUndecodableRequestInvalidArgumentNamingIt) {
  startAgent();
  RawClient c(adminSocket());
  const std::set<std::string> served = {"ServerLive",          "ServerReady",           "RepositoryIndex",
                                        "RepositoryModelLoad", "RepositoryModelUnload", "ModelStatistics"};
  const auto& svc = inferenceService();
  for (int i = 0; i < svc.method_count(); ++i) {
    const auto& m = *svc.method(i);
    if (m.client_streaming() || m.server_streaming()) continue;
    SCOPED_TRACE(m.name());
    ASSERT_NO_FATAL_FAILURE(checkPremise(m));
    if (served.count(m.name())) {
      expectRefusedAsUndecodable(c, m);
      expectDecodedAsEmpty(c, m);
      continue;
    }
    for (const auto& b : undecodable()) {
      RawReply r = c.call(m, b.bytes);
      EXPECT_EQ(codeName(r.status.error_code()), "UNIMPLEMENTED") << b.what;
      EXPECT_EQ(r.status.error_message(), m.name() + " is not served on this socket") << b.what;
    }
  }
  const auto& handOver = handOverSlot();
  ASSERT_NO_FATAL_FAILURE(checkPremise(handOver));
  expectRefusedAsUndecodable(c, handOver);
  expectDecodedAsEmpty(c, handOver);
}

// ModelInfer and ModelStreamInfer say why, e.g. for invalid UTF-8 in a string
// field (proto3 refuses it); the stream answers with error_message and goes on.
TEST_F(AgentTest, UndecodableRequestsAreInvalidArgumentWithTheReason) {
  startAgent();
  RawClient raw(socket(0));
  const auto& modelInfer = *inferenceService().FindMethodByName("ModelInfer");
  auto utf8 = inferRequest("tiny", "x\xff", {1, 4}, bytesOf(randomFloats(4, 7)));
  grpc::Status s = raw.call(modelInfer, utf8.SerializeAsString()).status;
  EXPECT_EQ(codeName(s.error_code()), "INVALID_ARGUMENT") << s.error_message();
  EXPECT_NE(s.error_message().find("UTF-8"), std::string::npos) << s.error_message();
  std::cout << "[ agent    ] undecodable: " << s.error_message() << "\n";

  Client c(socket(0));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 10s);
  auto stream = c.stub().ModelStreamInfer(&ctx);
  ASSERT_TRUE(stream->Write(utf8));
  inference::ModelStreamInferResponse r;
  ASSERT_TRUE(stream->Read(&r));
  EXPECT_EQ(r.error_message().rfind("ModelStreamInfer: ", 0), 0u) << r.error_message();
  EXPECT_NE(r.error_message().find("UTF-8"), std::string::npos) << r.error_message();
  auto x = randomFloats(4, 8);
  auto good = inferRequest("tiny", "x", {1, 4}, bytesOf(x));
  good.set_id("after");
  ASSERT_TRUE(stream->Write(good));
  ASSERT_TRUE(stream->Read(&r));
  EXPECT_TRUE(r.error_message().empty()) << r.error_message();
  EXPECT_EQ(r.infer_response().id(), "after");
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

}  // namespace
}  // namespace kubeaccel::testing
