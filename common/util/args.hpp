#pragma once
// Command-line flags for the three binaries: --name VALUE, --name=VALUE and
// switches. Bad usage is a UsageError whose message is one line.

#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace kubeaccel {

class UsageError : public std::runtime_error {
 public:
  explicit UsageError(const std::string& what) : std::runtime_error(what) {}
};

class Args {
 public:
  // `valued` flags take a value; `switches` do not. Names without the dashes.
  Args(int argc, char** argv, int first, const std::set<std::string>& valued,
       const std::set<std::string>& switches);

  std::optional<std::string> get(const std::string& name) const;
  std::string get(const std::string& name, const std::string& fallback) const;
  bool has(const std::string& name) const;
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  std::map<std::string, std::string> values_;
  std::vector<std::string> positional_;
};

// The exit codes every binary uses.
constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

}  // namespace kubeaccel
