#pragma once
#include <iosfwd>
#include <vector>

#include "config/config.hpp"
#include "discovery/inventory.hpp"
#include "util/args.hpp"

namespace kubeaccel {

// `kubeaccel devices [--config FILE] [--json]`: what discovery sees now and how
// the plugin would advertise it.
int devicesCommand(int argc, char** argv);

// One enumeration, IDs assigned, as the plugin does at start.
std::vector<TrackedDevice> discoverNow(const Config& config);
void printDeviceTable(std::ostream& out, const Config& config, const std::vector<TrackedDevice>& found,
                      const std::string& indent = "");

}  // namespace kubeaccel
