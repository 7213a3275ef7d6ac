#include "metrics/metrics_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <system_error>

namespace kubeaccel::metrics {

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kMaxRequestHead = 8 * 1024;
constexpr auto kReadTimeout = std::chrono::seconds(2);
constexpr auto kWriteTimeout = std::chrono::seconds(2);
constexpr auto kLingerTimeout = std::chrono::milliseconds(200);
constexpr char kMetricsContentType[] = "text/plain; version=0.0.4; charset=utf-8";

std::string errnoText(int err) { return std::generic_category().message(err); }

std::invalid_argument badAddress(const std::string& address, const std::string& why) {
  return std::invalid_argument("--metrics-address: " + why + ", got '" + address + "'");
}

// Waits until fd is ready for `events` or the wake fd fires or the deadline passes.
enum class Wait { Ready, Woken, TimedOut };
Wait waitFor(int fd, short events, int wakeFd, Clock::time_point deadline) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return Wait::TimedOut;
    pollfd p[2] = {{fd, events, 0}, {wakeFd, POLLIN, 0}};
    int n = ::poll(p, 2, static_cast<int>(left));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Wait::TimedOut;  // should not happen; treat as giving up on this client
    }
    if (p[1].revents != 0) return Wait::Woken;
    if (p[0].revents != 0) return Wait::Ready;  // includes POLLERR/POLLHUP: the next call reports it
  }
}

// Sends all of data; false when the client went away, stopped reading or the server is stopping.
bool sendAll(int fd, const char* data, std::size_t size, int wakeFd) {
  auto deadline = Clock::now() + kWriteTimeout;
  while (size > 0) {
    ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n > 0) {
      data += n;
      size -= static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (waitFor(fd, POLLOUT, wakeFd, deadline) != Wait::Ready) return false;
      continue;
    }
    return false;
  }
  return true;
}

struct Response {
  int status = 200;
  std::string contentType = "text/plain; charset=utf-8";
  std::string body;
  bool allowHeader = false;  // 405
  bool headOnly = false;
};

const char* reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
  }
}

std::string render(const Response& r) {
  std::string out = "HTTP/1.1 " + std::to_string(r.status) + " " + reason(r.status) + "\r\n";
  out += "Content-Type: " + r.contentType + "\r\n";
  out += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  if (r.allowHeader) out += "Allow: GET, HEAD\r\n";
  out += "Connection: close\r\n\r\n";
  if (!r.headOnly) out += r.body;
  return out;
}

Response error(int status, const std::string& text) {
  Response r;
  r.status = status;
  r.body = text + "\n";
  return r;
}

bool isTokenChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

// Builds the response for a complete request head (request line + header lines, no body).
Response respond(const std::string& head, const Registry& registry) {
  std::size_t eol = head.find('\n');
  std::string line = head.substr(0, eol);
  if (!line.empty() && line.back() == '\r') line.pop_back();

  std::size_t sp1 = line.find(' ');
  std::size_t sp2 = sp1 == std::string::npos ? std::string::npos : line.find(' ', sp1 + 1);
  if (sp1 == std::string::npos || sp2 == std::string::npos || line.find(' ', sp2 + 1) != std::string::npos)
    return error(400, "malformed request line");
  std::string method = line.substr(0, sp1);
  std::string target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string version = line.substr(sp2 + 1);
  if (method.empty()) return error(400, "malformed request line");
  for (char c : method)
    if (!isTokenChar(c)) return error(400, "malformed request line");
  if (version.rfind("HTTP/", 0) != 0) return error(400, "malformed request line");
  if (version != "HTTP/1.0" && version != "HTTP/1.1") return error(505, "only HTTP/1.0 and HTTP/1.1 are spoken here");

  // Header lines: each must be "name: value"; their content is not needed.
  std::size_t pos = eol == std::string::npos ? head.size() : eol + 1;
  while (pos < head.size()) {
    std::size_t end = head.find('\n', pos);
    if (end == std::string::npos) end = head.size();
    std::string h = head.substr(pos, end - pos);
    if (!h.empty() && h.back() == '\r') h.pop_back();
    pos = end + 1;
    if (h.empty()) break;
    std::size_t colon = h.find(':');
    if (colon == 0 || colon == std::string::npos) return error(400, "malformed header line");
    for (std::size_t i = 0; i < colon; ++i)
      if (!isTokenChar(h[i])) return error(400, "malformed header line");
  }

  // Origin form "/path?query", or absolute form "http://host/path".
  std::string path = target;
  if (path.rfind("http://", 0) == 0 || path.rfind("https://", 0) == 0) {
    std::size_t slash = path.find('/', path.find("//") + 2);
    path = slash == std::string::npos ? "/" : path.substr(slash);
  }
  if (path.empty() || path[0] != '/') return error(400, "malformed request target");
  path = path.substr(0, path.find_first_of("?#"));

  bool head_ = method == "HEAD";
  if (method != "GET" && !head_) {
    Response r = error(405, "only GET and HEAD are allowed");
    r.allowHeader = true;
    return r;
  }
  Response r;
  r.headOnly = head_;
  if (path == "/metrics") {
    r.contentType = kMetricsContentType;
    r.body = registry.exposition();
  } else if (path == "/") {
    r.body = "kubeaccel metrics: GET /metrics\n";
  } else {
    r = error(404, "not found; metrics are at /metrics");
    r.headOnly = head_;
  }
  return r;
}

// End of the request head ("\r\n\r\n", or a bare "\n\n"), or npos.
std::size_t headEnd(const std::string& buf) {
  std::size_t crlf = buf.find("\r\n\r\n");
  std::size_t lf = buf.find("\n\n");
  return std::min(crlf == std::string::npos ? crlf : crlf + 4, lf == std::string::npos ? lf : lf + 2);
}

}  // namespace

std::pair<std::string, int> parseAddress(const std::string& address) {
  std::size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon + 1 == address.size()) throw badAddress(address, "expected HOST:PORT");
  std::string host = address.substr(0, colon);
  std::string portText = address.substr(colon + 1);

  if (portText.size() > 5) throw badAddress(address, "port must be 0..65535");
  int port = 0;
  for (char c : portText) {
    if (c < '0' || c > '9') throw badAddress(address, "expected HOST:PORT with a numeric port");
    port = port * 10 + (c - '0');
  }
  if (port > 65535) throw badAddress(address, "port must be 0..65535");

  if (!host.empty() && host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') throw badAddress(address, "expected [IPv6]:PORT");
    host = host.substr(1, host.size() - 2);
    in6_addr a6;
    if (::inet_pton(AF_INET6, host.c_str(), &a6) != 1) throw badAddress(address, "not an IPv6 address");
    return {host, port};
  }
  if (host.find(':') != std::string::npos)
    throw badAddress(address, "an IPv6 address must be in brackets, e.g. [::1]:9100");
  if (host.empty() || host == "localhost") return {host, port};
  in_addr a4;
  if (::inet_pton(AF_INET, host.c_str(), &a4) != 1)
    throw badAddress(address, "HOST must be an IPv4 address, [IPv6 address] or localhost");
  return {host, port};
}

Server::Server(const std::string& address, const Registry& registry) : registry_(registry) {
  auto fail = [&](const std::string& why) -> std::runtime_error {
    if (listenFd_ >= 0) ::close(listenFd_);
    if (wakeFd_ >= 0) ::close(wakeFd_);
    listenFd_ = wakeFd_ = -1;
    return std::runtime_error("metrics: cannot listen on " + address + ": " + why);
  };

  std::pair<std::string, int> hp;
  try {
    hp = parseAddress(address);
  } catch (const std::invalid_argument& e) {
    std::string why = e.what();
    std::size_t cut = why.find(": ");  // drop the "--metrics-address: " prefix
    throw fail(cut == std::string::npos ? why : why.substr(cut + 2));
  }
  auto [host, port] = hp;

  sockaddr_storage ss{};
  socklen_t len = 0;
  if (host.find(':') != std::string::npos) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(static_cast<std::uint16_t>(port));
    ::inet_pton(AF_INET6, host.c_str(), &a->sin6_addr);
    len = sizeof(sockaddr_in6);
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(static_cast<std::uint16_t>(port));
    if (host.empty()) a->sin_addr.s_addr = htonl(INADDR_ANY);
    else ::inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host.c_str(), &a->sin_addr);
    len = sizeof(sockaddr_in);
  }

  listenFd_ = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (listenFd_ < 0) throw fail(errnoText(errno));
  int one = 1;
  ::setsockopt(listenFd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(listenFd_, reinterpret_cast<sockaddr*>(&ss), len) != 0) throw fail(errnoText(errno));
  if (::listen(listenFd_, 64) != 0) throw fail(errnoText(errno));
  sockaddr_storage bound{};
  socklen_t boundLen = sizeof bound;
  if (::getsockname(listenFd_, reinterpret_cast<sockaddr*>(&bound), &boundLen) != 0) throw fail(errnoText(errno));
  port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                            : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);

  wakeFd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wakeFd_ < 0) throw fail(errnoText(errno));
  try {
    thread_ = std::thread([this] { run(); });
  } catch (const std::system_error& e) {
    throw fail(e.what());
  }
}

Server::~Server() {
  std::uint64_t one = 1;
  while (::write(wakeFd_, &one, sizeof one) < 0 && errno == EINTR) {
  }
  if (thread_.joinable()) thread_.join();
  ::close(listenFd_);
  ::close(wakeFd_);
}

void Server::run() {
  for (;;) {
    pollfd p[2] = {{listenFd_, POLLIN, 0}, {wakeFd_, POLLIN, 0}};
    int n = ::poll(p, 2, -1);
    if (n < 0) continue;  // EINTR
    if (p[1].revents != 0) return;
    if (p[0].revents == 0) continue;

    int fd = ::accept4(listenFd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      int err = errno;
      if (err == EINTR || err == EAGAIN || err == EWOULDBLOCK || err == ECONNABORTED || err == EPROTO) continue;
      // Out of descriptors or memory: back off instead of spinning, but stay responsive to stop.
      pollfd w{wakeFd_, POLLIN, 0};
      if (::poll(&w, 1, 100) > 0) return;
      continue;
    }
    try {
      serve(fd);
    } catch (...) {
      // A client can never take the endpoint down; the connection is simply dropped.
    }
    ::close(fd);
  }
}

void Server::serve(int fd) {
  std::string buf;
  auto deadline = Clock::now() + kReadTimeout;
  auto answer = [&](const std::string& head) {
    try {
      return respond(head, registry_);
    } catch (...) {  // e.g. std::bad_alloc while rendering
      return error(500, "internal error");
    }
  };
  Response response;
  for (;;) {
    std::size_t end = headEnd(buf);
    if (end != std::string::npos) {
      response = end > kMaxRequestHead ? error(431, "request head larger than 8 KiB") : answer(buf.substr(0, end));
      break;
    }
    if (buf.size() > kMaxRequestHead) {
      response = error(431, "request head larger than 8 KiB");
      break;
    }
    char chunk[4096];
    ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n > 0) {
      buf.append(chunk, static_cast<std::size_t>(n));
      continue;
    }
    if (n == 0) {  // the client finished sending: answer what arrived, if anything
      if (buf.empty()) return;
      response = answer(buf);
      break;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return;  // reset or other error: nothing to answer
    Wait w = waitFor(fd, POLLIN, wakeFd_, deadline);
    if (w == Wait::Woken) return;
    if (w == Wait::TimedOut) {
      if (buf.empty()) return;  // never said anything: just hang up
      response = error(408, "request not complete within 2 s");
      break;
    }
  }

  std::string out = render(response);
  if (!sendAll(fd, out.data(), out.size(), wakeFd_)) return;

  // Lingering close: stop sending, then swallow what the client still sends (a request body we did
  // not read) for a moment, so that close() does not turn into a reset that destroys the response.
  ::shutdown(fd, SHUT_WR);
  auto lingerEnd = Clock::now() + kLingerTimeout;
  std::size_t drained = 0;
  for (;;) {
    char sink[4096];
    ssize_t n = ::recv(fd, sink, sizeof sink, 0);
    if (n > 0) {
      drained += static_cast<std::size_t>(n);
      if (drained > 64 * 1024) return;
      continue;
    }
    if (n == 0) return;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return;
    if (waitFor(fd, POLLIN, wakeFd_, lingerEnd) != Wait::Ready) return;
  }
}

}  // namespace kubeaccel::metrics
