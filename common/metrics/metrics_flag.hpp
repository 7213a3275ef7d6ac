#pragma once
// --metrics-address, as both daemons take it: off unless given.

#include <memory>
#include <optional>
#include <string>

#include "metrics/metrics_server.hpp"

namespace kubeaccel::metrics {

// Serves `registry` on `address` and logs where; null when no address is
// given. A malformed address is a UsageError (exit 2).
std::unique_ptr<Server> serveMetricsFlag(const std::optional<std::string>& address, const Registry& registry);

}  // namespace kubeaccel::metrics
