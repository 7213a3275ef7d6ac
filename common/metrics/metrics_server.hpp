#pragma once
// The /metrics HTTP endpoint, served by cpp-httplib (Debian's libcpp-httplib-dev) on a pool of
// threads, so that slow or silent clients cannot hold up a scrape.
//
// GET /metrics   -> 200, Content-Type "text/plain; version=0.0.4; charset=utf-8", body = registry.exposition()
// GET /          -> 200, a one-line pointer to /metrics
// HEAD on either -> the same headers without a body
// anything else  -> cpp-httplib's own answer (404 for another path or method, 400 for a malformed request)
//
// Each connection holds one of kThreads threads while it is read or written. A read or a write
// that makes no progress for 2 s ends the connection, and so does a kept-alive connection idle for
// 2 s, so a silent client holds a thread for at most ~2 s; kThreads half-sent requests at once
// are needed to delay a scrape at all. ~Server() stops accepting and waits for the threads, which
// takes up to those 2 s while a client holds one.

#include <atomic>
#include <memory>
#include <thread>

#include "metrics/metrics_address.hpp"
#include "metrics/metrics_registry.hpp"

namespace httplib {
class Server;
}

namespace kubeaccel::metrics {

class Server {
 public:
  static constexpr int kThreads = 16;           // connections served at once
  static constexpr int kTimeoutSeconds = 2;     // read, write and keep-alive idle timeout

  // address: see parseAddress() (":PORT" is loopback). Port 0 picks a free port (see port()).
  // The registry must outlive the server. Throws std::runtime_error("metrics: cannot listen on
  // ADDR: reason"), also for an address parseAddress() rejects.
  Server(const std::string& address, const Registry& registry);
  ~Server();  // stops accepting and joins the threads
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  int port() const { return port_; }

 private:
  std::unique_ptr<httplib::Server> http_;
  int port_ = 0;
  std::atomic<bool> loopEnded_{false};
  std::thread thread_;
};

}  // namespace kubeaccel::metrics
