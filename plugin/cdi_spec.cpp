#include "cdi_spec.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace kubeaccel {

std::string cdiDeviceName(const std::string& kind, const std::string& id) { return kind + "=" + id; }

nlohmann::json cdiSpec(const std::string& kind, const std::vector<AdvertisedDevice>& devices) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& d : devices) {
    // A device without its nodes would start a container without its accelerator;
    // Allocate refuses it, and the spec does not describe it.
    if (d.device.nodes.empty() || !d.device.problem.empty()) continue;
    nlohmann::json nodes = nlohmann::json::array();
    for (const auto& n : d.device.nodes) nodes.push_back({{"path", n}, {"permissions", "rw"}});
    list.push_back({{"name", d.id},
                    {"containerEdits", {{"deviceNodes", nodes}, {"env", {"KUBEACCEL_CDI_DEVICE=" + d.id}}}}});
  }
  return {{"cdiVersion", kCdiVersion}, {"kind", kind}, {"devices", list}};
}

std::string cdiSpecPath(const std::string& dir, const std::string& kind) {
  std::string file = kind;
  for (char& c : file)
    if (c == '/') c = '-';
  return dir + "/" + file + ".json";
}

void writeCdiSpec(const std::string& dir, const std::string& kind, const nlohmann::json& spec) {
  std::string path = cdiSpecPath(dir, kind);
  std::string tmp = path + ".tmp";
  std::string text = spec.dump(2) + "\n";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("CDI spec " + tmp + ": " + std::strerror(errno));
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  int err = errno;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    if (ok) err = errno;
    ::unlink(tmp.c_str());
    throw std::runtime_error("CDI spec " + path + ": " + std::strerror(err));
  }
}

void removeCdiSpec(const std::string& dir, const std::string& kind) { ::unlink(cdiSpecPath(dir, kind).c_str()); }

}  // namespace kubeaccel
