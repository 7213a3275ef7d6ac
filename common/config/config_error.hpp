#pragma once
#include <stdexcept>
#include <string>

namespace kubeaccel {

// A bad config: the message is one line naming the offending key.
class ConfigError : public std::runtime_error {
 public:
  explicit ConfigError(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace kubeaccel
