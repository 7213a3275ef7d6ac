#pragma once
#include <string>

namespace kubeaccel {

// Sets up spdlog for a daemon or tool: stderr, one line per event, the program
// name in every line. Returns false for an unknown level name.
bool setupLogging(const std::string& program, const std::string& level);

}  // namespace kubeaccel
