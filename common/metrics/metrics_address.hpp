#pragma once
// --metrics-address HOST:PORT, as both daemons take it.

#include <string>
#include <utility>

namespace kubeaccel::metrics {

// Parses "HOST:PORT" where HOST is an IPv4 address, a bracketed IPv6 address ("[::1]"), "localhost",
// or empty (":9470"); PORT is 0..65535. Returns {the address to bind, port}: "localhost" and an
// empty HOST both give "127.0.0.1" (the endpoint carries per-slot counts unauthenticated, so
// it is exposed beyond the node only when an address says so: see docs/operations.md); an IPv6
// address comes without its brackets. Throws std::invalid_argument with a one-line reason, e.g.
// "--metrics-address: expected HOST:PORT, got 'x'".
std::pair<std::string, int> parseAddress(const std::string& address);

}  // namespace kubeaccel::metrics
