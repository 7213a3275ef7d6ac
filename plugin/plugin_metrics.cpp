#include "plugin_metrics.hpp"

namespace kubeaccel {

void PluginMetrics::devices(PluginMetrics* m, const std::string& resource, int healthy, int unhealthy) {
  if (!m) return;
  const char* help = "Devices (slots in agent mode) advertised to the kubelet, by health.";
  m->registry_.gauge("kubeaccel_plugin_devices", help, {{"resource", resource}, {"health", "Healthy"}}).set(healthy);
  m->registry_.gauge("kubeaccel_plugin_devices", help, {{"resource", resource}, {"health", "Unhealthy"}}).set(unhealthy);
}

void PluginMetrics::registration(PluginMetrics* m, const std::string& resource, bool ok) {
  if (!m) return;
  m->registry_
      .counter(ok ? "kubeaccel_plugin_registrations_total" : "kubeaccel_plugin_registration_failures_total",
               ok ? "Successful registrations with the kubelet." : "Failed registrations with the kubelet.",
               {{"resource", resource}})
      .inc();
}

void PluginMetrics::allocation(PluginMetrics* m, const std::string& resource, bool ok) {
  if (!m) return;
  m->registry_
      .counter(ok ? "kubeaccel_plugin_allocations_total" : "kubeaccel_plugin_allocation_failures_total",
               ok ? "Container allocations answered." : "Container allocations refused.", {{"resource", resource}})
      .inc();
}

void PluginMetrics::listAndWatchSent(PluginMetrics* m, const std::string& resource) {
  if (!m) return;
  m->registry_
      .counter("kubeaccel_plugin_listandwatch_messages_total", "ListAndWatch messages sent to the kubelet.",
               {{"resource", resource}})
      .inc();
}

}  // namespace kubeaccel
