#pragma once
// `kubeaccel bench`: load on one slot socket, swept over batch sizes and
// client counts. The request loop is declared here so that bench/agent_bench
// measures the very client code the command runs.

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "inference/grpc_service.grpc.pb.h"

namespace kubeaccel {

// `kubeaccel bench --socket unix://PATH --model NAME [--batch 1,8,32] [--concurrency N|1,4,8]
//  [--duration S] [--warmup S] [--shm] [--csv FILE] [--plot FILE.png]`
int benchCommand(int argc, char** argv);

// A channel to the slot socket at `socketPath` (a plain path). gRPC gives
// channels of the same target and arguments one shared connection; with
// `ownConnection` the channel gets a connection of its own.
std::shared_ptr<grpc::Channel> benchChannel(const std::string& socketPath, bool ownConnection);

// One client's requests: the same request, sent back to back. The inputs are
// InferenceClient::randomInputs(meta, batch), made once. With `shm` they and
// the outputs travel through a system-shared-memory region of this loop's own:
// a file in the socket's directory, written once and registered once, as a
// performance client would; the destructor unregisters and removes it.
// With `streamFor`, the requests go on one ModelStreamInfer stream of at most
// that lifetime, each answer read before the next request is written
// (Triton's streaming mode, for the lowest latency). prepare() opens it and
// sends the request once on it, so that a stream the agent refuses (past its
// --max-streams) stops this client before the run; the destructor closes it;
// send() opens another when the server ends one. `deadline` bounds every
// other call: connecting, a unary request, registering the region.
class RequestLoop {
 public:
  RequestLoop(std::shared_ptr<grpc::Channel> channel, const std::string& socketPath,
              const inference::ModelMetadataResponse& meta, int batch, bool shm,
              std::chrono::milliseconds deadline,
              std::optional<std::chrono::milliseconds> streamFor = std::nullopt);
  ~RequestLoop();
  RequestLoop(const RequestLoop&) = delete;
  RequestLoop& operator=(const RequestLoop&) = delete;

  // Connects and, with shm, creates and registers the region; opens the
  // stream, with streamFor. Call once, before send().
  grpc::Status prepare();
  // One round trip: a ModelInfer call, or a request and its answer on the stream.
  // A stream that ended fails the request in flight; the next send() opens another.
  grpc::Status send();
  // Output `i` of the last successful send(): raw contents, or the region's bytes.
  std::string_view output(size_t i) const;
  int batch() const { return batch_; }

 private:
  std::unique_ptr<grpc::ClientContext> context() const;
  grpc::Status prepareRequest();
  // Opens the stream, sends the request on it and reads the answer.
  grpc::Status openStream();
  // The request and its answer on the open stream.
  grpc::Status streamRoundTrip();

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<inference::GRPCInferenceService::Stub> stub_;
  std::string socketPath_;
  inference::ModelMetadataResponse meta_;
  int batch_;
  bool shm_;
  std::optional<std::chrono::milliseconds> streamFor_;
  std::chrono::milliseconds deadline_;
  inference::ModelInferRequest request_;
  inference::ModelInferResponse response_;
  // The stream, with streamFor_.
  std::unique_ptr<grpc::ClientContext> streamContext_;
  std::unique_ptr<grpc::ClientReaderWriter<inference::ModelInferRequest, inference::ModelStreamInferResponse>> streamCall_;
  inference::ModelStreamInferResponse streamResponse_;
  // The shared-memory region, when shm_.
  std::string region_, file_;
  int fd_ = -1;
  void* map_ = nullptr;
  size_t mapSize_ = 0;
  bool registered_ = false;
  std::vector<std::pair<size_t, size_t>> outputRanges_;  // offset, size per output
};

}  // namespace kubeaccel
