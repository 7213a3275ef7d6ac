#include "util/agent_dir.hpp"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace kubeaccel {

void prepareAgentDirectory(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw std::runtime_error("cannot create --agent-dir " + dir + ": " + ec.message());
  if (::chmod(dir.c_str(), 0700) != 0)
    spdlog::warn("cannot make --agent-dir {} mode 0700 ({}): node users may reach the slot directories", dir,
                 std::strerror(errno));
}

std::string adminSocketPath(const std::string& dir) {
  std::error_code ec;
  std::filesystem::path abs = std::filesystem::absolute(dir, ec);
  return ((ec ? std::filesystem::path(dir) : abs) / "admin.sock").string();
}

}  // namespace kubeaccel
