#pragma once
// The ModelStatistics answer, from any source of figures: a slot's own (on a
// slot socket) or the sum over a node's devices (on the admin socket).

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <grpcpp/support/status.h>

#include "inference/grpc_service.pb.h"
#include "repository/model_repository.hpp"
#include "repository/model_statistics.hpp"

namespace kubeaccel::agent {

// Adds b's figures to a's.
void mergeInto(ModelStatisticsSnapshot& a, const ModelStatisticsSnapshot& b);

// Fills `resp` for `req` over the models of `index`; `figuresOf(name)` gives
// a model's figures (nullopt: none). NOT_FOUND for an unknown model or a
// version not served, naming it.
grpc::Status statisticsReply(const inference::ModelStatisticsRequest& req, const std::vector<ModelIndexEntry>& index,
                             const std::function<std::optional<ModelStatisticsSnapshot>(const std::string&)>& figuresOf,
                             inference::ModelStatisticsResponse* resp);

}  // namespace kubeaccel::agent
