#pragma once
// One inference request as the scheduler sees it.

#include <chrono>
#include <functional>
#include <memory>
#include <vector>

#include <grpcpp/support/status.h>

#include "backend/tensor.hpp"
#include "repository/model_repository.hpp"

namespace kubeaccel::agent {

struct JobTiming {
  std::chrono::nanoseconds queue{0};
  std::chrono::nanoseconds compute{0};  // the whole run's, shared with the other jobs in it
  // This job's share of the run's compute time (compute * its rows / the
  // run's rows): what fairness charged its slot for it.
  std::chrono::nanoseconds charged{0};
  int batchSize = 0;  // rows in the backend run this job was part of
};

struct InferJob {
  using Clock = std::chrono::steady_clock;
  using Done = std::function<void(grpc::Status, std::vector<OutputTensor>, const JobTiming&)>;

  std::shared_ptr<const ServedModel> model;
  int slot = 0;
  std::vector<InputTensor> inputs;  // model input order; views into the request
  // Where the engine may write the outputs itself when this job runs alone
  // (ModelRunner::run): the request's pinned shared-memory ranges.
  OutputDestinations outputDestinations;
  int64_t rows = 1;                 // size of dim 0 for a batched model, else 1
  Clock::time_point deadline = Clock::time_point::max();
  Clock::time_point enqueued{};
  // True once the client has cancelled the call (or gone away); may be empty.
  // A worker drops such a job instead of running it.
  std::function<bool()> cancelled;
  Done done;  // called exactly once, from a worker (or from submit's caller on refusal)
};

}  // namespace kubeaccel::agent
