#include "util/socket_check.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "util/unique_fd.hpp"

namespace kubeaccel {
namespace {

// The HTTP/2 connection preface and an empty SETTINGS frame (RFC 9113, 3.4).
constexpr char kPreface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\4\0\0\0\0\0";
constexpr size_t kPrefaceBytes = sizeof kPreface - 1;
constexpr unsigned char kSettingsFrame = 0x4;

struct Attempt {
  UniqueFd fd;
  std::string result = "no answer";
  bool done = false;
  std::string got;  // bytes read so far
};

}  // namespace

std::vector<std::string> checkNewConnections(const std::vector<std::string>& sockets,
                                             std::chrono::milliseconds timeout) {
  std::vector<Attempt> attempts(sockets.size());
  for (size_t i = 0; i < sockets.size(); ++i) {
    Attempt& a = attempts[i];
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (sockets[i].size() >= sizeof addr.sun_path) {
      a.result = "path too long";
      a.done = true;
      continue;
    }
    std::memcpy(addr.sun_path, sockets[i].c_str(), sockets[i].size() + 1);
    a.fd.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    // A Unix connect completes at once or fails (EAGAIN: the backlog is full).
    if (!a.fd || ::connect(a.fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      a.result = std::string("connect: ") + std::strerror(errno);
      a.done = true;
      continue;
    }
    if (::send(a.fd.get(), kPreface, kPrefaceBytes, MSG_NOSIGNAL) != static_cast<ssize_t>(kPrefaceBytes)) {
      a.result = std::string("send: ") + std::strerror(errno);
      a.done = true;
    }
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    std::vector<pollfd> fds;
    std::vector<size_t> which;
    for (size_t i = 0; i < attempts.size(); ++i)
      if (!attempts[i].done) {
        fds.push_back({attempts[i].fd.get(), POLLIN, 0});
        which.push_back(i);
      }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (fds.empty() || left.count() <= 0) break;
    if (::poll(fds.data(), fds.size(), static_cast<int>(left.count())) < 0 && errno != EINTR) break;
    for (size_t j = 0; j < fds.size(); ++j) {
      if (!fds[j].revents) continue;
      Attempt& a = attempts[which[j]];
      char buf[64];
      ssize_t n = ::recv(a.fd.get(), buf, sizeof buf, 0);
      if (n <= 0) {
        a.result = n == 0 ? "the server closed the connection" : std::string("recv: ") + std::strerror(errno);
        a.done = true;
        continue;
      }
      a.got.append(buf, static_cast<size_t>(n));
      if (a.got.size() >= 9) {  // a frame header: length(3) type(1) flags(1) stream(4)
        a.done = true;
        a.result = static_cast<unsigned char>(a.got[3]) == kSettingsFrame ? "" : "not an HTTP/2 server";
      }
    }
  }
  std::vector<std::string> out;
  for (auto& a : attempts)
    out.push_back(a.done ? a.result : "no answer within " + std::to_string(timeout.count()) + " ms");
  return out;
}

}  // namespace kubeaccel
