#pragma once
// Finds and opens backend libraries: <dir>/libkubeaccel_backend_<name>.so,
// loaded with dlopen and checked against this agent's ABI version.

#include <string>

#include "backend/kubeaccel_backend.h"

namespace kubeaccel::agent {

// The default --backend-dir.
inline constexpr const char* kDefaultBackendDir = "/usr/lib/kubeaccel/backends";

// The library file for backend `name` in `dir`.
std::string backendLibraryPath(const std::string& dir, const std::string& name);

// The function table of backend `name` from `dir`, or null with `reason`
// (one line, naming the file) when the file is missing, does not load,
// exports no entry point, or speaks another ABI version or name. A library
// is opened once per process (later calls get the same answer) and never
// closed. Thread-safe.
const kab_backend* openBackendLibrary(const std::string& dir, const std::string& name, std::string* reason);

}  // namespace kubeaccel::agent
