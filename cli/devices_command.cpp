#include "devices_command.hpp"

#include <cstdio>
#include <iostream>
#include <map>
#include <optional>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <chrono>

#include "config/config_loader.hpp"
#include "discovery/advertisement.hpp"
#include "discovery/udev_scanner.hpp"
#include "gpu/nvml.hpp"
#include "served_models.hpp"
#include "util/log.hpp"

namespace kubeaccel {
namespace {

constexpr const char* kHelp = R"(Usage: kubeaccel devices [--config FILE] [--json] [--agent-dir DIR] [--log-level L]

Lists the accelerators discovery sees on this node now, as kubeaccel-plugin
would advertise them: resource, ID, health, mode, device nodes, NUMA node,
vendor:product and where the device sits on the bus; for an Unhealthy device,
why ("problem" in --json); for an NVIDIA GPU, its memory in use and
utilization from the driver (NVML; "gpu" in --json, absent without a driver);
for an agent-mode device, the models it serves, as the running agent says on
its admin socket ("models" in --json; absent when the agent cannot be asked,
which needs root since the socket is 0600, or does not serve that device;
the reason is logged on stderr). Agent-mode devices are shown once per slot
in --json and once per device, with their slot count, in the table. Uses the
same catalog and discovery code as the plugin.

  --config FILE    catalog and modes (default: the built-in catalog)
  --json           print {"devices": [...]} only; logs go to stderr
  --agent-dir DIR  the agent's directory, for the models each device serves
                   (default /var/lib/kubeaccel/agent)
)";

// NVML's figures for an NVIDIA GPU, or nullopt (not one, or no driver).
std::optional<gpu::GpuUsage> gpuUsage(const Device& d) {
  if (d.vendor != "10de" || d.pciAddress().empty()) return std::nullopt;
  return gpu::usageOf(d.pciAddress());
}

std::string gib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f GiB", static_cast<double>(bytes) / (1u << 30));
  return buf;
}

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

}  // namespace

void printDeviceTable(std::ostream& out, const Config& config, const std::vector<TrackedDevice>& found,
                      const std::string& indent, const ServedModels* models) {
  std::vector<std::vector<std::string>> rows = {
      {"RESOURCE", "ID", "HEALTH", "MODE", "SLOTS", "NUMA", "VENDOR:PRODUCT", "BUS", "NODES"}};
  for (const auto& cls : config.classes)
    for (const auto& t : found) {
      if (t.device.className != cls.name) continue;
      rows.push_back({config.resourceName(cls), t.device.id, t.healthy ? "Healthy" : "Unhealthy", toString(cls.mode),
                      cls.mode == Mode::Agent ? std::to_string(cls.slots) : "-", std::to_string(t.device.numaNode),
                      t.device.vendor + ":" + t.device.product,
                      t.device.busLocation +
                          (t.device.usbSpeedMbps > 0 ? " (" + std::to_string(t.device.usbSpeedMbps) + " Mbps)" : ""),
                      t.device.nodes.empty() ? "-" : join(t.device.nodes, ",")});
    }
  if (rows.size() == 1) {
    out << indent << "No accelerators found (" << config.classes.size() << " classes in the catalog).\n";
    return;
  }
  std::vector<std::string> problems;
  for (const auto& t : found)
    if (!t.device.problem.empty()) problems.push_back(t.device.className + " " + t.device.id + ": " + t.device.problem);
  std::vector<size_t> width(rows[0].size(), 0);
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  for (const auto& r : rows) {
    out << indent;
    for (size_t i = 0; i < r.size(); ++i) {
      out << r[i];
      if (i + 1 < r.size()) out << std::string(width[i] - r[i].size() + 2, ' ');
    }
    out << "\n";
  }
  std::vector<std::string> gpus;
  for (const auto& t : found)
    if (auto u = gpuUsage(t.device))
      gpus.push_back(t.device.id + ": memory " + gib(u->memoryUsedBytes) + " of " + gib(u->memoryTotalBytes) +
                     " in use, utilization " + std::to_string(u->utilizationPercent) + "%");
  if (!gpus.empty()) out << indent << "\n" << indent << "GPUs (NVML):\n";
  for (const auto& g : gpus) out << indent << "  " << g << "\n";
  if (models && !models->unreachable.empty()) {
    out << indent << "\n" << indent << "Models served: unknown, " << models->unreachable << "\n";
  } else if (models) {
    // Every device asked is in one of the two maps: the lines, by device key.
    std::map<std::string, std::string> lines;
    for (const auto& [key, names] : models->byDevice) lines[key] = names.empty() ? "none ready" : join(names, ", ");
    for (const auto& [key, why] : models->notServed)
      lines[key] = "not served by the agent (" + why + "; is --config the agent's?)";
    if (!lines.empty()) out << indent << "\n" << indent << "Models served (kubeaccel-agent):\n";
    for (const auto& [key, line] : lines) out << indent << "  " << key << ": " << line << "\n";
  }
  if (!problems.empty()) out << indent << "\n" << indent << "Unhealthy because:\n";
  for (const auto& p : problems) out << indent << "  " << p << "\n";
}

namespace {

nlohmann::json toJson(const Config& config, const std::vector<TrackedDevice>& found, const ServedModels& models) {
  nlohmann::json devices = nlohmann::json::array();
  for (const auto& cls : config.classes)
    for (const auto& a : advertise(cls, found)) {
      devices.push_back({{"resource", config.resourceName(cls)},
                         {"class", cls.name},
                         {"id", a.id},
                         {"physicalId", a.physicalId},
                         {"health", a.healthy ? "Healthy" : "Unhealthy"},
                         {"mode", toString(cls.mode)},
                         {"nodes", a.device.nodes},
                         {"numaNode", a.numaNode},
                         {"vendor", a.device.vendor},
                         {"product", a.device.product},
                         {"bus", a.device.busLocation}});
      if (a.device.usbSpeedMbps > 0) devices.back()["usbSpeedMbps"] = a.device.usbSpeedMbps;
      if (a.device.usbConfigurations > 0) devices.back()["usbConfigurations"] = a.device.usbConfigurations;
      if (a.slot >= 0) devices.back()["slot"] = a.slot;
      if (!a.device.problem.empty()) devices.back()["problem"] = a.device.problem;
      if (auto u = gpuUsage(a.device))
        devices.back()["gpu"] = {{"memoryUsedBytes", u->memoryUsedBytes},
                                 {"memoryTotalBytes", u->memoryTotalBytes},
                                 {"utilizationPercent", u->utilizationPercent}};
      if (auto it = models.byDevice.find(deviceKey(cls.name, a.physicalId)); it != models.byDevice.end())
        devices.back()["models"] = it->second;
    }
  return {{"devices", devices}};
}

}  // namespace

std::vector<TrackedDevice> discoverNow(const Config& config) {
  UdevScanner scanner(config);
  std::vector<Device> devices = scanner.scanAll();
  std::vector<TrackedDevice> found;
  for (auto& d : devices) {
    bool healthy = d.problem.empty();
    found.push_back({std::move(d), healthy});
  }
  return found;
}

int devicesCommand(int argc, char** argv) {
  Args args(argc, argv, 2, {"config", "log-level", "agent-dir"}, {"json", "help"});
  if (args.has("help")) {
    std::cout << kHelp;
    return kExitOk;
  }
  if (!args.positional().empty()) throw UsageError("devices: unexpected argument '" + args.positional()[0] + "'");
  if (!setupLogging("kubeaccel", args.get("log-level", "warn")))
    throw UsageError("--log-level: expected trace, debug, info, warn or error");
  Config config = loadConfig(args.get("config", ""));
  std::vector<TrackedDevice> found = discoverNow(config);
  std::vector<std::string> agentDevices;
  for (const auto& cls : config.classes)
    if (cls.mode == Mode::Agent)
      for (const auto& t : found)
        if (t.device.className == cls.name) agentDevices.push_back(deviceKey(cls.name, t.device.id));
  ServedModels models =
      servedModels(args.get("agent-dir", "/var/lib/kubeaccel/agent"), agentDevices, std::chrono::seconds(2));
  if (args.has("json")) {
    // The reasons go to the log (stderr), since stdout holds only the document.
    if (!models.unreachable.empty()) spdlog::warn("models served: unknown, {}", models.unreachable);
    for (const auto& [key, why] : models.notServed) spdlog::warn("models served: {}: {}", key, why);
    std::cout << toJson(config, found, models).dump(2) << "\n";
  } else {
    printDeviceTable(std::cout, config, found, "", &models);
  }
  return kExitOk;
}

}  // namespace kubeaccel
