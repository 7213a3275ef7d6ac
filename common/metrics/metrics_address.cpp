#include "metrics/metrics_address.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdexcept>

namespace kubeaccel::metrics {

namespace {

std::invalid_argument badAddress(const std::string& address, const std::string& why) {
  return std::invalid_argument("--metrics-address: " + why + ", got '" + address + "'");
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
  // Loopback unless an address is named: a port alone must not open the endpoint to the network.
  if (host.empty() || host == "localhost") return {"127.0.0.1", port};
  in_addr a4;
  if (::inet_pton(AF_INET, host.c_str(), &a4) != 1)
    throw badAddress(address, "HOST must be an IPv4 address, [IPv6 address] or localhost");
  return {host, port};
}

}  // namespace kubeaccel::metrics
