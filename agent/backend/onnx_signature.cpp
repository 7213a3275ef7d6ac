#include "backend/onnx_signature.hpp"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>

#include <functional>
#include <set>
#include <stdexcept>

namespace kubeaccel::agent {
namespace {

using google::protobuf::io::CodedInputStream;
using WFL = google::protobuf::internal::WireFormatLite;

// Field numbers from onnx.proto.
constexpr int kModelGraph = 7;
constexpr int kGraphInitializer = 5, kGraphInput = 11, kGraphOutput = 12;
constexpr int kTensorName = 8;
constexpr int kValueInfoName = 1, kValueInfoType = 2;
constexpr int kTypeTensor = 1;
constexpr int kTensorTypeElem = 1, kTensorTypeShape = 2;
constexpr int kShapeDim = 1;
constexpr int kDimValue = 1;

[[noreturn]] void bad(const std::string& why) { throw std::runtime_error("not a valid ONNX model: " + why); }

// Calls `field(number, wireType, stream)` for each field of the message in
// `bytes`; the callback must consume length-delimited fields it reads.
void forEachField(const std::string& bytes, const std::function<void(int, int, CodedInputStream&)>& field) {
  CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()), static_cast<int>(bytes.size()));
  in.SetTotalBytesLimit(INT32_MAX);
  while (uint32_t tag = in.ReadTag()) {
    int number = WFL::GetTagFieldNumber(tag);
    int wire = WFL::GetTagWireType(tag);
    int before = in.CurrentPosition();
    field(number, wire, in);
    if (in.CurrentPosition() == before && !WFL::SkipField(&in, tag)) bad("truncated field " + std::to_string(number));
  }
  if (!in.ConsumedEntireMessage()) bad("trailing bytes");
}

std::string readBytes(CodedInputStream& in) {
  uint32_t len;
  std::string out;
  if (!in.ReadVarint32(&len) || !in.ReadString(&out, static_cast<int>(len))) bad("truncated length-delimited field");
  return out;
}

std::string datatypeOf(int elemType) {
  switch (elemType) {
    case 1: return "FP32";
    case 2: return "UINT8";
    case 3: return "INT8";
    case 4: return "UINT16";
    case 5: return "INT16";
    case 6: return "INT32";
    case 7: return "INT64";
    case 8: return "BYTES";
    case 9: return "BOOL";
    case 10: return "FP16";
    case 11: return "FP64";
    case 12: return "UINT32";
    case 13: return "UINT64";
    case 16: return "BF16";
    default: return "UNSUPPORTED(" + std::to_string(elemType) + ")";
  }
}

TensorSpec readValueInfo(const std::string& bytes) {
  TensorSpec t;
  forEachField(bytes, [&](int n, int wire, CodedInputStream& in) {
    if (wire != WFL::WIRETYPE_LENGTH_DELIMITED) return;
    if (n == kValueInfoName) t.name = readBytes(in);
    if (n != kValueInfoType) return;
    forEachField(readBytes(in), [&](int n2, int w2, CodedInputStream& in2) {
      if (n2 != kTypeTensor || w2 != WFL::WIRETYPE_LENGTH_DELIMITED) return;
      forEachField(readBytes(in2), [&](int n3, int w3, CodedInputStream& in3) {
        if (n3 == kTensorTypeElem && w3 == WFL::WIRETYPE_VARINT) {
          uint64_t e;
          in3.ReadVarint64(&e);
          t.datatype = datatypeOf(static_cast<int>(e));
        } else if (n3 == kTensorTypeShape && w3 == WFL::WIRETYPE_LENGTH_DELIMITED) {
          forEachField(readBytes(in3), [&](int n4, int w4, CodedInputStream& in4) {
            if (n4 != kShapeDim || w4 != WFL::WIRETYPE_LENGTH_DELIMITED) return;
            int64_t dim = -1;  // dim_param or nothing: symbolic
            forEachField(readBytes(in4), [&](int n5, int w5, CodedInputStream& in5) {
              if (n5 == kDimValue && w5 == WFL::WIRETYPE_VARINT) {
                uint64_t v;
                in5.ReadVarint64(&v);
                dim = static_cast<int64_t>(v);
              }
            });
            t.shape.push_back(dim);
          });
        }
      });
    });
  });
  if (t.name.empty()) bad("a graph input or output has no name");
  return t;
}

}  // namespace

OnnxSignature readOnnxSignature(const std::string& bytes) {
  std::string graph;
  forEachField(bytes, [&](int n, int wire, CodedInputStream& in) {
    if (n == kModelGraph && wire == WFL::WIRETYPE_LENGTH_DELIMITED) graph = readBytes(in);
  });
  if (graph.empty()) bad("no graph");
  std::set<std::string> initializers;
  OnnxSignature sig;
  forEachField(graph, [&](int n, int wire, CodedInputStream& in) {
    if (wire != WFL::WIRETYPE_LENGTH_DELIMITED) return;
    if (n == kGraphInput) {
      sig.inputs.push_back(readValueInfo(readBytes(in)));
    } else if (n == kGraphOutput) {
      sig.outputs.push_back(readValueInfo(readBytes(in)));
    } else if (n == kGraphInitializer) {
      forEachField(readBytes(in), [&](int n2, int w2, CodedInputStream& in2) {
        if (n2 == kTensorName && w2 == WFL::WIRETYPE_LENGTH_DELIMITED) initializers.insert(readBytes(in2));
      });
    }
  });
  // Older exporters list weights among the inputs too.
  std::erase_if(sig.inputs, [&](const TensorSpec& t) { return initializers.count(t.name) > 0; });
  if (sig.inputs.empty() || sig.outputs.empty()) bad("the graph declares no inputs or no outputs");
  return sig;
}

}  // namespace kubeaccel::agent
