#pragma once
// The plugin's Prometheus metrics, per resource. Every method is a no-op on a
// null PluginMetrics*, so callers need not care whether metrics are on.

#include <string>

#include "metrics/metrics_registry.hpp"

namespace kubeaccel {

class PluginMetrics {
 public:
  static void devices(PluginMetrics* m, const std::string& resource, int healthy, int unhealthy);
  static void registration(PluginMetrics* m, const std::string& resource, bool ok);
  static void allocation(PluginMetrics* m, const std::string& resource, bool ok);
  static void listAndWatchSent(PluginMetrics* m, const std::string& resource);

  const metrics::Registry& registry() const { return registry_; }

 private:
  metrics::Registry registry_;
};

}  // namespace kubeaccel
