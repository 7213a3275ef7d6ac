#pragma once
#include <string>

#include "config/config.hpp"

namespace kubeaccel {

// Parses a config document and merges it over the built-in catalog:
// classes replace built-ins of the same name, "disabled": true drops one,
// "builtin": false starts from an empty catalog. Throws ConfigError.
Config parseConfig(const std::string& json_text, const std::string& origin = "config");

// Reads FILE (or the built-in catalog alone when path is empty).
Config loadConfig(const std::string& path);

// The compiled-in catalog, as the same JSON document an admin would write.
const std::string& builtinCatalogJson();

}  // namespace kubeaccel
