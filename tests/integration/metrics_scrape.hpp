#pragma once
// Reading a daemon's Prometheus endpoint from a test: plain HTTP/1.1 over
// loopback, and one sample's value.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <optional>
#include <regex>
#include <sstream>
#include <string>

namespace kubeaccel::testing {

// The whole reply (status line, headers, body) to GET `path` on 127.0.0.1:`port`; "" when it cannot connect.
inline std::string httpGet(int port, const std::string& path) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return "";
  }
  std::string req = "GET " + path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
  (void)!::write(fd, req.data(), req.size());
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

// The port of the metrics endpoint a daemon logged ("metrics on http://127.0.0.1:PORT/metrics"), or -1.
inline int metricsPortFromLog(const std::string& log) {
  std::smatch m;
  if (!std::regex_search(log, m, std::regex("metrics on http://127.0.0.1:([0-9]+)/metrics"))) return -1;
  return std::stoi(m[1]);
}

// The value of the sample `series` (name and labels, as exposed: `x_total{a="b"}`)
// in an exposition `body`; none when it is not there.
inline std::optional<double> sampleValue(const std::string& body, const std::string& series) {
  std::istringstream in(body);
  for (std::string line; std::getline(in, line);)
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 && line[series.size()] == ' ')
      return std::stod(line.substr(series.size() + 1));
  return std::nullopt;
}

}  // namespace kubeaccel::testing
