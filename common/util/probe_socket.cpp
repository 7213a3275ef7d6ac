#include "util/probe_socket.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <stdexcept>

namespace kubeaccel {
namespace {

sockaddr_un probeAddress(const std::string& path, socklen_t* len) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  size_t n = std::min(path.size(), sizeof(addr.sun_path) - 1);
  std::memcpy(addr.sun_path, path.data(), n);
  *len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + n);
  return addr;
}

// Who listens on `addr`: "pid N, uid U", or "unknown".
std::string holderOf(const sockaddr_un& addr, socklen_t len) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ucred peer{};
  socklen_t credLen = sizeof peer;
  if (!fd || ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), len) != 0 ||
      ::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &peer, &credLen) != 0)
    return "unknown";
  return "pid " + std::to_string(peer.pid) + ", uid " + std::to_string(peer.uid);
}

}  // namespace

std::string agentProbePath(const std::string& agentDir) { return agentDir + "/probe.sock"; }
std::string pluginProbePath(const std::string& agentDir) { return agentDir + "/plugin-probe.sock"; }

ProbeServer::ProbeServer(EventLoop& loop, const std::string& path, std::function<std::string()> check)
    : loop_(loop), check_(std::move(check)) {
  if (path.size() >= sizeof(sockaddr_un::sun_path))
    throw std::runtime_error("probe socket " + path + ": the path is too long for a Unix socket");
  fd_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  socklen_t len;
  sockaddr_un addr = probeAddress(path, &len);
  // A file left by a daemon that did not stop cleanly is replaced; one a
  // live daemon answers on is not.
  std::string holder = holderOf(addr, len);
  if (holder != "unknown")
    throw std::runtime_error("probe socket " + path + ": in use (held by " + holder +
                             "; is another daemon running for the same directory?)");
  ::unlink(path.c_str());
  if (!fd_ || ::bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0 || ::listen(fd_.get(), 8) != 0 ||
      ::chmod(path.c_str(), 0600) != 0) {
    int err = errno;
    throw std::runtime_error("probe socket " + path + ": " + std::strerror(err));
  }
  path_ = path;
  loop_.watchFd(fd_.get(), [this] {
    for (;;) {
      UniqueFd client(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
      if (!client) return;
      std::string why = check_();
      std::string reply = why.empty() ? "ok\n" : "unhealthy: " + why + "\n";
      [[maybe_unused]] auto n = ::send(client.get(), reply.data(), reply.size(), MSG_NOSIGNAL);
    }
  });
}

ProbeServer::~ProbeServer() {
  loop_.unwatchFd(fd_.get());
  ::unlink(path_.c_str());
}

int probe(const std::string& path, std::string* why) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  socklen_t len;
  sockaddr_un addr = probeAddress(path, &len);
  if (!fd || ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    *why = "no daemon answers (" + std::string(std::strerror(errno)) + ")";
    return 1;
  }
  // The daemon runs as the prober's own uid (same container), so a peer of
  // another uid is not the daemon, wherever the socket is.
  ucred peer{};
  socklen_t credLen = sizeof peer;
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &peer, &credLen) != 0) {
    *why = "cannot tell who holds the probe socket (" + std::string(std::strerror(errno)) + ")";
    return 1;
  }
  if (peer.uid != ::geteuid()) {
    *why = "the probe socket is held by pid " + std::to_string(peer.pid) + " (uid " + std::to_string(peer.uid) +
           "), not by the daemon (uid " + std::to_string(::geteuid()) + ")";
    return 1;
  }
  pollfd p{fd.get(), POLLIN, 0};
  if (::poll(&p, 1, 5000) <= 0) {
    *why = "the daemon did not answer within 5 s";
    return 1;
  }
  char buf[512];
  ssize_t n = ::read(fd.get(), buf, sizeof buf - 1);
  std::string reply = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  while (!reply.empty() && reply.back() == '\n') reply.pop_back();
  *why = reply.empty() ? "empty answer" : reply;
  return reply == "ok" ? 0 : 1;
}

}  // namespace kubeaccel
