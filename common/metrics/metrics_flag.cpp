#include "metrics/metrics_flag.hpp"

#include <spdlog/spdlog.h>

#include <stdexcept>

#include "util/args.hpp"

namespace kubeaccel::metrics {

std::unique_ptr<Server> serveMetricsFlag(const std::optional<std::string>& address, const Registry& registry) {
  if (!address) return nullptr;
  std::string host;
  try {
    host = parseAddress(*address).first;
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  auto server = std::make_unique<Server>(*address, registry);
  spdlog::info("metrics on http://{}:{}/metrics", host.find(':') != std::string::npos ? "[" + host + "]" : host,
               server->port());
  return server;
}

}  // namespace kubeaccel::metrics
