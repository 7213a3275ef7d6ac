#include "metrics/metrics_server.hpp"

#include <httplib.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <stdexcept>
#include <system_error>

namespace kubeaccel::metrics {

namespace {

constexpr char kMetricsContentType[] = "text/plain; version=0.0.4; charset=utf-8";
// A scrape is a GET; nothing a client sends in a body is ever needed.
constexpr std::size_t kMaxPayload = 64 * 1024;

}  // namespace

Server::Server(const std::string& address, const Registry& registry) : http_(std::make_unique<httplib::Server>()) {
  auto fail = [&](const std::string& why) {
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
  const auto& [host, port] = hp;

  http_->new_task_queue = [] { return new httplib::ThreadPool(kThreads); };
  http_->set_read_timeout(kTimeoutSeconds, 0);
  http_->set_write_timeout(kTimeoutSeconds, 0);
  http_->set_keep_alive_timeout(kTimeoutSeconds);
  http_->set_payload_max_length(kMaxPayload);
  // cpp-httplib's default also sets SO_REUSEPORT, which would let a second process of the same
  // user bind the same port and take a share of the scrapes; SO_REUSEADDR alone only allows a
  // quick restart.
  http_->set_socket_options([](int sock) {
    int one = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  });
  // The registry is read under its own lock; an exception while rendering (bad_alloc) is a 500,
  // never the end of the daemon.
  http_->Get("/metrics", [&registry](const httplib::Request&, httplib::Response& res) {
    res.set_content(registry.exposition(), kMetricsContentType);
  });
  http_->Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("kubeaccel metrics: GET /metrics\n", "text/plain; charset=utf-8");
  });
  http_->set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    res.status = 500;
    res.set_content("internal error\n", "text/plain; charset=utf-8");
  });

  errno = 0;
  if (port == 0) {
    port_ = http_->bind_to_any_port(host);
    if (port_ <= 0) throw fail(errno != 0 ? std::generic_category().message(errno) : "bind failed");
  } else {
    if (!http_->bind_to_port(host, port))
      throw fail(errno != 0 ? std::generic_category().message(errno) : "bind failed");
    port_ = port;
  }
  try {
    thread_ = std::thread([this] {
      http_->listen_after_bind();
      loopEnded_ = true;
    });
  } catch (const std::system_error& e) {
    throw fail(e.what());
  }
  // stop() is a no-op until the loop runs (it checks is_running()), so ~Server() could wait
  // forever for a thread that has not started yet: wait for it here.
  while (!http_->is_running() && !loopEnded_) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

Server::~Server() {
  http_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace kubeaccel::metrics
