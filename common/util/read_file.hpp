#pragma once
#include <optional>
#include <string>

namespace kubeaccel {

// The whole file, or nullopt (with errno set) when it cannot be opened.
std::optional<std::string> readFile(const std::string& path);

}  // namespace kubeaccel
