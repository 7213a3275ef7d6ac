#pragma once
#include <iosfwd>
#include <vector>

#include "config/config.hpp"
#include "discovery/inventory.hpp"
#include "served_models.hpp"
#include "util/args.hpp"

namespace kubeaccel {

// `kubeaccel devices [--config FILE] [--json] [--agent-dir DIR]`: what
// discovery sees now, how the plugin would advertise it, and the models the
// agent serves on each agent-mode device.
int devicesCommand(int argc, char** argv);

// One enumeration, IDs assigned, as the plugin does at start.
std::vector<TrackedDevice> discoverNow(const Config& config);
// The table; with `models`, a section saying what each agent-mode device serves.
void printDeviceTable(std::ostream& out, const Config& config, const std::vector<TrackedDevice>& found,
                      const std::string& indent = "", const ServedModels* models = nullptr);

}  // namespace kubeaccel
