#pragma once
// A minimal HTTP/1.1 endpoint for Prometheus scrapes.
//
// GET /metrics   -> 200, Content-Type "text/plain; version=0.0.4; charset=utf-8", body = registry.exposition()
// GET /          -> 200, a one-line pointer to /metrics
// HEAD on either -> the same headers without a body
// other paths    -> 404; other methods -> 405 (with Allow: GET, HEAD); a malformed request -> 400;
// a request head over 8 KiB -> 431; no complete request head within 2 s -> 408 and close.
// A query string ("/metrics?x=y") is ignored. Every response carries Connection: close.
//
// One thread: it waits for a connection, serves one request on it and closes it, so a slow or
// silent client holds the endpoint for at most the 2 s read timeout (plus 2 s for a client that
// will not read the response). Nothing a client sends can stop the thread; ~Server() wakes it
// and joins at once, even mid-connection.

#include <string>
#include <thread>
#include <utility>

#include "metrics/metrics_registry.hpp"

namespace kubeaccel::metrics {

class Server {
 public:
  // address: see parseAddress(). Port 0 picks a free port (see port()). The registry must outlive
  // the server. Throws std::runtime_error("metrics: cannot listen on ADDR: reason"), also for an
  // address parseAddress() rejects.
  Server(const std::string& address, const Registry& registry);
  ~Server();  // stops and joins the thread
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  int port() const { return port_; }

 private:
  void run();
  void serve(int fd);

  const Registry& registry_;
  int listenFd_ = -1;
  int wakeFd_ = -1;  // eventfd, written by ~Server()
  int port_ = 0;
  std::thread thread_;
};

// Parses "HOST:PORT" where HOST is an IPv4 address, a bracketed IPv6 address ("[::1]"), "localhost"
// (127.0.0.1), or empty (":9100", all IPv4 interfaces); PORT is 0..65535. Returns {host without
// brackets, port}. Throws std::invalid_argument with a one-line reason, e.g.
// "--metrics-address: expected HOST:PORT, got 'x'".
std::pair<std::string, int> parseAddress(const std::string& address);

}  // namespace kubeaccel::metrics
