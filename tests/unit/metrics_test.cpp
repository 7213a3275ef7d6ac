// Tests for common/metrics: the Prometheus text exposition and the HTTP endpoint.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "metrics/metrics_address.hpp"
#include "metrics/metrics_registry.hpp"
#include "metrics/metrics_server.hpp"

namespace km = kubeaccel::metrics;
using namespace std::chrono_literals;

namespace {

// ---- exposition -----------------------------------------------------------------------------------

TEST(MetricsRegistry, EmptyRegistryExposesNothing) {
  km::Registry reg;
  EXPECT_EQ(reg.exposition(), "");
}

TEST(MetricsRegistry, CounterWithoutLabels) {
  km::Registry reg;
  auto& c = reg.counter("kubeaccel_allocations_total", "Allocate calls answered.");
  c.inc();
  c.inc(2);
  EXPECT_EQ(c.value(), 3);
  EXPECT_EQ(reg.exposition(),
            "# HELP kubeaccel_allocations_total Allocate calls answered.\n"
            "# TYPE kubeaccel_allocations_total counter\n"
            "kubeaccel_allocations_total 3\n");
}

TEST(MetricsRegistry, CounterNameIsNotRewritten) {
  km::Registry reg;
  reg.counter("requests", "No _total is appended.").inc(0.5);
  EXPECT_EQ(reg.exposition(),
            "# HELP requests No _total is appended.\n"
            "# TYPE requests counter\n"
            "requests 0.5\n");
}

TEST(MetricsRegistry, CounterWithLabelsSortedByValues) {
  km::Registry reg;
  reg.counter("rpc_total", "RPCs.", {{"method", "Infer"}, {"code", "OK"}}).inc(5);
  reg.counter("rpc_total", "RPCs.", {{"method", "Allocate"}, {"code", "OK"}}).inc(1);
  reg.counter("rpc_total", "RPCs.", {{"method", "Allocate"}, {"code", "INTERNAL"}});
  EXPECT_EQ(reg.exposition(),
            "# HELP rpc_total RPCs.\n"
            "# TYPE rpc_total counter\n"
            "rpc_total{method=\"Allocate\",code=\"INTERNAL\"} 0\n"
            "rpc_total{method=\"Allocate\",code=\"OK\"} 1\n"
            "rpc_total{method=\"Infer\",code=\"OK\"} 5\n");
}

TEST(MetricsRegistry, GaugeSetAndAdd) {
  km::Registry reg;
  auto& g = reg.gauge("queue_depth", "Requests waiting.");
  g.set(4);
  g.add(-5.5);
  EXPECT_EQ(g.value(), -1.5);
  auto& h = reg.gauge("devices", "Devices by health.", {{"health", "Healthy"}});
  h.set(0.25);
  EXPECT_EQ(reg.exposition(),
            "# HELP devices Devices by health.\n"
            "# TYPE devices gauge\n"
            "devices{health=\"Healthy\"} 0.25\n"
            "# HELP queue_depth Requests waiting.\n"
            "# TYPE queue_depth gauge\n"
            "queue_depth -1.5\n");
}

TEST(MetricsRegistry, HistogramWithoutLabels) {
  km::Registry reg;
  auto& h = reg.histogram("latency_seconds", "Latency.", {0.1, 1, 10});
  for (double v : {0.05, 0.1, 5.0, 100.0}) h.observe(v);  // 0.1 lands in le="0.1": bounds are inclusive
  EXPECT_EQ(h.count(), 4u);
  EXPECT_EQ(reg.exposition(),
            "# HELP latency_seconds Latency.\n"
            "# TYPE latency_seconds histogram\n"
            "latency_seconds_bucket{le=\"0.1\"} 2\n"
            "latency_seconds_bucket{le=\"1\"} 2\n"
            "latency_seconds_bucket{le=\"10\"} 3\n"
            "latency_seconds_bucket{le=\"+Inf\"} 4\n"
            "latency_seconds_sum 105.15\n"
            "latency_seconds_count 4\n");
}

TEST(MetricsRegistry, HistogramWithLabelsPutsLeLast) {
  km::Registry reg;
  auto& h = reg.histogram("batch_size", "Batch sizes.", {1, 8}, {{"model", "squeezenet"}, {"device", "d0"}});
  h.observe(1);
  h.observe(4);
  reg.histogram("batch_size", "Batch sizes.", {1, 8}, {{"model", "squeezenet"}, {"device", "d0"}}).observe(9);
  EXPECT_EQ(reg.exposition(),
            "# HELP batch_size Batch sizes.\n"
            "# TYPE batch_size histogram\n"
            "batch_size_bucket{model=\"squeezenet\",device=\"d0\",le=\"1\"} 1\n"
            "batch_size_bucket{model=\"squeezenet\",device=\"d0\",le=\"8\"} 2\n"
            "batch_size_bucket{model=\"squeezenet\",device=\"d0\",le=\"+Inf\"} 3\n"
            "batch_size_sum{model=\"squeezenet\",device=\"d0\"} 14\n"
            "batch_size_count{model=\"squeezenet\",device=\"d0\"} 3\n");
}

TEST(MetricsRegistry, HistogramEdgeValues) {
  km::Registry reg;
  auto& h = reg.histogram("h", "H.", {0.00005, 1, std::numeric_limits<double>::infinity()});  // +Inf dropped
  EXPECT_EQ(h.bounds().size(), 2u);
  h.observe(-1);
  h.observe(std::nan(""));
  auto s = h.snapshot();
  ASSERT_EQ(s.buckets.size(), 3u);
  EXPECT_EQ(s.buckets[0], 1u);  // -1 <= 5e-05
  EXPECT_EQ(s.buckets[2], 2u);  // NaN only in +Inf
  EXPECT_TRUE(std::isnan(s.sum));
  EXPECT_NE(reg.exposition().find("h_bucket{le=\"5e-05\"} 1\n"), std::string::npos);
  EXPECT_NE(reg.exposition().find("h_sum NaN\n"), std::string::npos);
}

TEST(MetricsRegistry, FamiliesSortedByName) {
  km::Registry reg;
  reg.gauge("zeta", "Z.");
  reg.counter("alpha_total", "A.");
  reg.histogram("mid", "M.", {1});
  std::string text = reg.exposition();
  auto a = text.find("# HELP alpha_total"), m = text.find("# HELP mid"), z = text.find("# HELP zeta");
  ASSERT_NE(a, std::string::npos);
  EXPECT_LT(a, m);
  EXPECT_LT(m, z);
}

TEST(MetricsRegistry, EscapesLabelValuesAndHelp) {
  km::Registry reg;
  reg.gauge("g", "Help with \\ backslash\nand newline \"quotes stay\".", {{"path", "C:\\dir \"x\"\nnext"}}).set(1);
  EXPECT_EQ(reg.exposition(),
            "# HELP g Help with \\\\ backslash\\nand newline \"quotes stay\".\n"
            "# TYPE g gauge\n"
            "g{path=\"C:\\\\dir \\\"x\\\"\\nnext\"} 1\n");
  EXPECT_EQ(km::escapeLabelValue("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  EXPECT_EQ(km::escapeLabelValue("ünïcode"), "ünïcode");
}

TEST(MetricsRegistry, FormatsValues) {
  EXPECT_EQ(km::formatValue(0), "0");
  EXPECT_EQ(km::formatValue(400000), "400000");
  EXPECT_EQ(km::formatValue(-3), "-3");
  EXPECT_EQ(km::formatValue(0.1), "0.1");
  EXPECT_EQ(km::formatValue(-2.5), "-2.5");
  EXPECT_EQ(km::formatValue(0.0001), "0.0001");
  EXPECT_EQ(km::formatValue(0.00025), "0.00025");
  EXPECT_EQ(km::formatValue(0.00005), "5e-05");
  EXPECT_EQ(km::formatValue(1234.5678), "1234.5678");
  EXPECT_EQ(km::formatValue(1.0 / 3), "0.3333333333333333");
  EXPECT_EQ(km::formatValue(1e-300), "1e-300");
  EXPECT_EQ(km::formatValue(1e20), "1e+20");
  EXPECT_EQ(km::formatValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(km::formatValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(km::formatValue(std::nan("")), "NaN");
}

TEST(MetricsRegistry, InvalidNamesThrow) {
  km::Registry reg;
  for (const char* bad : {"", "1abc", "a-b", "a b", "é", "a.b"})
    EXPECT_THROW(reg.counter(bad, "x"), std::invalid_argument) << bad;
  for (const char* good : {"a", "_a", ":a", "a:b_c9", "A"}) EXPECT_NO_THROW(reg.gauge(good, "x")) << good;
  for (const char* bad : {"", "1x", "a:b", "a-b", "__reserved"})
    EXPECT_THROW(reg.counter("c_total", "x", {{bad, "v"}}), std::invalid_argument) << bad;
  EXPECT_THROW(reg.counter("d_total", "x", {{"a", "1"}, {"a", "2"}}), std::invalid_argument);
  EXPECT_THROW(reg.histogram("h1", "x", {1}, {{"le", "1"}}), std::invalid_argument);
  EXPECT_THROW(reg.histogram("h2", "x", {2, 1}), std::invalid_argument);
  EXPECT_THROW(reg.histogram("h3", "x", {1, 1}), std::invalid_argument);
  EXPECT_THROW(reg.histogram("h4", "x", {std::nan("")}), std::invalid_argument);
  EXPECT_TRUE(km::validMetricName("kubeaccel_x:y"));
  EXPECT_FALSE(km::validLabelName("x:y"));
  // A failed declaration leaves nothing behind.
  EXPECT_EQ(reg.exposition().find("c_total"), std::string::npos);
  EXPECT_EQ(reg.exposition().find("h1"), std::string::npos);
}

TEST(MetricsRegistry, CounterRejectsDecrease) {
  km::Registry reg;
  auto& c = reg.counter("c_total", "x");
  EXPECT_THROW(c.inc(-1), std::invalid_argument);
  EXPECT_THROW(c.inc(std::nan("")), std::invalid_argument);
  EXPECT_EQ(c.value(), 0);
}

TEST(MetricsRegistry, SameDeclarationReturnsSameChild) {
  km::Registry reg;
  auto& a = reg.counter("c_total", "x", {{"k", "v"}});
  auto& b = reg.counter("c_total", "x", {{"k", "v"}});
  auto& other = reg.counter("c_total", "x", {{"k", "w"}});
  EXPECT_EQ(&a, &b);
  EXPECT_NE(&a, &other);
  auto& h1 = reg.histogram("h", "x", km::latencyBuckets());
  auto& h2 = reg.histogram("h", "x", km::latencyBuckets());
  EXPECT_EQ(&h1, &h2);
  // Many more children must not move the first one.
  for (int i = 0; i < 1000; ++i) reg.counter("c_total", "x", {{"k", std::to_string(i)}});
  EXPECT_EQ(&a, &reg.counter("c_total", "x", {{"k", "v"}}));
}

TEST(MetricsRegistry, ConflictingRedeclarationThrows) {
  km::Registry reg;
  reg.counter("m_total", "help", {{"a", "1"}});
  reg.histogram("h", "help", {1, 2});
  EXPECT_THROW(reg.gauge("m_total", "help", {{"a", "1"}}), std::logic_error);            // type
  EXPECT_THROW(reg.counter("m_total", "other help", {{"a", "1"}}), std::logic_error);    // help
  EXPECT_THROW(reg.counter("m_total", "help", {{"b", "1"}}), std::logic_error);          // label names
  EXPECT_THROW(reg.counter("m_total", "help"), std::logic_error);                        // label count
  EXPECT_THROW(reg.counter("m_total", "help", {{"a", "1"}, {"b", "2"}}), std::logic_error);
  EXPECT_THROW(reg.histogram("h", "help", {1, 3}), std::logic_error);                    // bounds
  EXPECT_THROW(reg.gauge("h_count", "help"), std::logic_error);  // would clash with h's samples
}

TEST(MetricsRegistry, SampleNameClashWithHistogramDeclaredLater) {
  km::Registry reg;
  reg.gauge("x_sum", "x");
  EXPECT_THROW(reg.histogram("x", "x", {1}), std::logic_error);
  EXPECT_NO_THROW(reg.histogram("y", "y", {1}));
}

TEST(MetricsRegistry, Buckets) {
  auto lat = km::latencyBuckets();
  ASSERT_FALSE(lat.empty());
  EXPECT_DOUBLE_EQ(lat.front(), 50e-6);
  EXPECT_DOUBLE_EQ(lat.back(), 10);
  for (std::size_t i = 1; i < lat.size(); ++i) EXPECT_LT(lat[i - 1], lat[i]);
  EXPECT_EQ(km::batchSizeBuckets(), (std::vector<double>{1, 2, 4, 8, 16, 32, 64}));
  km::Registry reg;
  EXPECT_NO_THROW(reg.histogram("l", "l", lat));
  EXPECT_NO_THROW(reg.histogram("b", "b", km::batchSizeBuckets()));
}

// ---- concurrency ----------------------------------------------------------------------------------

TEST(MetricsRegistry, ConcurrentUpdatesWhileScraping) {
  km::Registry reg;
  auto& c = reg.counter("ops_total", "Ops.");
  auto& g = reg.gauge("level", "Level.");
  auto& h = reg.histogram("size", "Sizes.", km::batchSizeBuckets());
  constexpr int kThreads = 4, kPerThread = 100000;

  std::atomic<bool> done{false};
  std::atomic<int> scrapes{0};
  std::atomic<bool> inconsistent{false};
  std::thread scraper([&] {
    while (!done.load()) {
      std::string text = reg.exposition();
      // +Inf bucket and _count come from one snapshot, so they always agree.
      const std::string infKey = "size_bucket{le=\"+Inf\"} ", countKey = "size_count ";
      auto inf = text.find(infKey);
      auto cnt = text.find(countKey);
      try {
        if (inf == std::string::npos || cnt == std::string::npos ||
            std::stoull(text.substr(inf + infKey.size())) != std::stoull(text.substr(cnt + countKey.size())))
          inconsistent = true;
      } catch (const std::exception&) {
        inconsistent = true;
      }
      scrapes.fetch_add(1);
    }
  });
  std::vector<std::thread> workers;
  for (int t = 0; t < kThreads; ++t) {
    workers.emplace_back([&, t] {
      auto& mine = reg.counter("per_thread_total", "Per thread.", {{"thread", std::to_string(t)}});
      for (int i = 0; i < kPerThread; ++i) {
        c.inc();
        mine.inc();
        g.add(1);
        h.observe(static_cast<double>(i % 64 + 1));  // 1..64
        if (i % 10000 == 0) reg.counter("ops_total", "Ops.").inc(0);  // lookups race with scrapes too
      }
    });
  }
  for (auto& w : workers) w.join();
  done = true;
  scraper.join();

  EXPECT_GT(scrapes.load(), 0);
  EXPECT_FALSE(inconsistent.load());
  EXPECT_EQ(c.value(), kThreads * kPerThread);
  EXPECT_EQ(g.value(), kThreads * kPerThread);
  EXPECT_EQ(h.count(), static_cast<std::uint64_t>(kThreads * kPerThread));
  // Each thread observes 1..64 cyclically: 100000 = 1562 * 64 + 32 -> sum per thread is exact.
  double perThread = 1562.0 * (64 * 65 / 2) + (32 * 33 / 2);
  EXPECT_EQ(h.sum(), kThreads * perThread);
  auto s = h.snapshot();
  // le=1 holds value 1 only: 1563 per thread (1562 full cycles + the partial one).
  EXPECT_EQ(s.buckets[0], static_cast<std::uint64_t>(kThreads * 1563));
  EXPECT_EQ(s.buckets.back(), static_cast<std::uint64_t>(kThreads * kPerThread));
  for (int t = 0; t < kThreads; ++t)
    EXPECT_EQ(reg.counter("per_thread_total", "Per thread.", {{"thread", std::to_string(t)}}).value(), kPerThread);
  EXPECT_NE(reg.exposition().find("ops_total 400000\n"), std::string::npos);
}

// ---- address parsing ------------------------------------------------------------------------------

TEST(MetricsAddress, ParsesGoodAddresses) {
  EXPECT_EQ(km::parseAddress("127.0.0.1:9100"), (std::pair<std::string, int>{"127.0.0.1", 9100}));
  EXPECT_EQ(km::parseAddress("0.0.0.0:0"), (std::pair<std::string, int>{"0.0.0.0", 0}));
  EXPECT_EQ(km::parseAddress("localhost:65535"), (std::pair<std::string, int>{"127.0.0.1", 65535}));
  EXPECT_EQ(km::parseAddress("[::1]:8080"), (std::pair<std::string, int>{"::1", 8080}));
  EXPECT_EQ(km::parseAddress("[::]:9100"), (std::pair<std::string, int>{"::", 9100}));
  // A port alone is loopback: exposing per-slot counts to the network takes an address.
  EXPECT_EQ(km::parseAddress(":9100"), (std::pair<std::string, int>{"127.0.0.1", 9100}));
}

TEST(MetricsAddress, RejectsBadAddressesWithOneLineReason) {
  for (const char* bad : {"", "x", "9100", "1.2.3.4", "1.2.3.4:", "1.2.3.4:abc", "1.2.3.4:65536", "1.2.3.4:-1",
                          "1.2.3.4:123456", "::1:9100", "[::1]", "[::1:9100", "[zz]:1", "example.com:80",
                          "256.1.1.1:80", "[]:80"}) {
    try {
      km::parseAddress(bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const std::invalid_argument& e) {
      std::string what = e.what();
      EXPECT_EQ(what.rfind("--metrics-address: ", 0), 0u) << what;
      EXPECT_EQ(what.find('\n'), std::string::npos) << what;
      EXPECT_NE(what.find(std::string("got '") + bad + "'"), std::string::npos) << what;
    }
  }
  try {
    km::parseAddress("x");
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "--metrics-address: expected HOST:PORT, got 'x'");
  }
}

// ---- HTTP server ----------------------------------------------------------------------------------

int connectTo(int port, int family = AF_INET) {
  int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int rc;
  if (family == AF_INET6) {
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(static_cast<std::uint16_t>(port));
    a.sin6_addr = in6addr_loopback;
    rc = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  } else {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    rc = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  }
  if (rc != 0) {
    ::close(fd);
    throw std::runtime_error("connect failed");
  }
  return fd;
}

void sendAll(int fd, const std::string& data) {
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) throw std::runtime_error("send failed");
    off += static_cast<std::size_t>(n);
  }
}

std::string readToEof(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;  // EOF, reset or the 10 s receive timeout
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

struct Reply {
  std::string statusLine;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

Reply parseReply(const std::string& raw) {
  Reply r;
  auto headEnd = raw.find("\r\n\r\n");
  if (headEnd == std::string::npos) return r;
  std::string head = raw.substr(0, headEnd);
  r.body = raw.substr(headEnd + 4);
  std::size_t pos = head.find("\r\n");
  r.statusLine = head.substr(0, pos);
  while (pos != std::string::npos) {
    std::size_t start = pos + 2;
    pos = head.find("\r\n", start);
    std::string line = head.substr(start, pos == std::string::npos ? std::string::npos : pos - start);
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    std::string value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    r.headers[name] = value;
  }
  return r;
}

Reply request(int port, const std::string& req, int family = AF_INET) {
  int fd = connectTo(port, family);
  sendAll(fd, req);
  std::string raw = readToEof(fd);
  ::close(fd);
  return parseReply(raw);
}

// Asks the server to close after answering, so that reading to EOF does not wait for its keep-alive timeout.
std::string get(const std::string& path) {
  return "GET " + path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
}

km::Registry& sampleRegistry() {
  static km::Registry reg;
  static bool init = [] {
    reg.counter("kubeaccel_test_requests_total", "Requests.", {{"code", "OK"}}).inc(7);
    reg.gauge("kubeaccel_test_devices", "Devices.").set(3);
    reg.histogram("kubeaccel_test_latency_seconds", "Latency.", km::latencyBuckets()).observe(0.002);
    return true;
  }();
  (void)init;
  return reg;
}

TEST(MetricsServer, ServesMetrics) {
  km::Server server("127.0.0.1:0", sampleRegistry());
  ASSERT_GT(server.port(), 0);
  Reply r = request(server.port(), get("/metrics"));
  EXPECT_EQ(r.statusLine, "HTTP/1.1 200 OK");
  EXPECT_EQ(r.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(r.body, sampleRegistry().exposition());
  EXPECT_EQ(r.headers["content-length"], std::to_string(r.body.size()));
  EXPECT_NE(r.body.find("kubeaccel_test_requests_total{code=\"OK\"} 7\n"), std::string::npos);
}

TEST(MetricsServer, ServesHttp10AndQueryStringsAndHead) {
  km::Server server("localhost:0", sampleRegistry());
  Reply r = request(server.port(), "GET /metrics HTTP/1.0\r\n\r\n");
  EXPECT_EQ(r.statusLine.substr(9), "200 OK");
  EXPECT_EQ(r.body, sampleRegistry().exposition());
  r = request(server.port(), get("/metrics?name[]=x"));
  EXPECT_EQ(r.statusLine, "HTTP/1.1 200 OK");
  r = request(server.port(), "HEAD /metrics HTTP/1.1\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(r.statusLine, "HTTP/1.1 200 OK");
  EXPECT_EQ(r.body, "");
  EXPECT_EQ(r.headers["content-length"], std::to_string(sampleRegistry().exposition().size()));
}

// Reads one response (head and a Content-Length body) from a connection that stays open.
Reply readOneReply(int fd) {
  std::string raw;
  char buf[4096];
  for (;;) {
    std::size_t head = raw.find("\r\n\r\n");
    if (head != std::string::npos) {
      Reply r = parseReply(raw);
      if (r.body.size() >= std::stoul(r.headers["content-length"])) return r;
    }
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return parseReply(raw);
    raw.append(buf, static_cast<std::size_t>(n));
  }
}

TEST(MetricsServer, KeptAliveConnectionServesSeveralScrapes) {
  km::Server server("127.0.0.1:0", sampleRegistry());
  int fd = connectTo(server.port());
  const std::string req = "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n";
  // One after the other on the same connection, as Prometheus scrapes (it does not pipeline).
  for (int i = 0; i < 3; ++i) {
    sendAll(fd, req);
    Reply r = readOneReply(fd);
    EXPECT_EQ(r.statusLine, "HTTP/1.1 200 OK") << "scrape " << i;
    EXPECT_EQ(r.body, sampleRegistry().exposition());
  }
  // Then the server closes the idle connection after its 2 s keep-alive timeout.
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(readToEof(fd), "");
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  ::close(fd);
}

TEST(MetricsServer, RootPointsAtMetrics) {
  km::Server server("127.0.0.1:0", sampleRegistry());
  Reply r = request(server.port(), get("/"));
  EXPECT_EQ(r.statusLine, "HTTP/1.1 200 OK");
  EXPECT_NE(r.body.find("/metrics"), std::string::npos);
}

TEST(MetricsServer, UnknownPathOrMethodIs404) {
  km::Server server("127.0.0.1:0", sampleRegistry());
  EXPECT_EQ(request(server.port(), get("/nope")).statusLine, "HTTP/1.1 404 Not Found");
  EXPECT_EQ(request(server.port(), get("/metrics/extra")).statusLine, "HTTP/1.1 404 Not Found");
  Reply r = request(server.port(), "POST /metrics HTTP/1.1\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello");
  EXPECT_EQ(r.statusLine, "HTTP/1.1 404 Not Found");
  EXPECT_EQ(r.body.find("kubeaccel_test"), std::string::npos);
  EXPECT_EQ(request(server.port(), "DELETE / HTTP/1.1\r\nConnection: close\r\n\r\n").statusLine,
            "HTTP/1.1 404 Not Found");
}

TEST(MetricsServer, GarbageIs400AndDoesNotHurt) {
  km::Server server("127.0.0.1:0", sampleRegistry());
  EXPECT_EQ(request(server.port(), "hello\r\n\r\n").statusLine, "HTTP/1.1 400 Bad Request");
  static const char tlsHello[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n";  // binary, with NULs
  EXPECT_EQ(request(server.port(), std::string(tlsHello, sizeof tlsHello - 1)).statusLine, "HTTP/1.1 400 Bad Request");
  EXPECT_EQ(request(server.port(), "GET /metrics HTTP/2.0\r\n\r\n").statusLine, "HTTP/1.1 400 Bad Request");
  // Still serving.
  EXPECT_EQ(request(server.port(), get("/metrics")).statusLine, "HTTP/1.1 200 OK");
}

TEST(MetricsServer, OversizedRequestIsRefused) {
  km::Server server("127.0.0.1:0", sampleRegistry());
  // A request line or header line past cpp-httplib's 8 KiB line limit is not served.
  std::string req = "GET /metrics HTTP/1.1\r\nX-Big: " + std::string(9000, 'a') + "\r\nConnection: close\r\n\r\n";
  Reply r = request(server.port(), req);
  EXPECT_NE(r.statusLine, "HTTP/1.1 200 OK") << r.statusLine;
  r = request(server.port(), "GET /" + std::string(9000, 'm') + " HTTP/1.1\r\nConnection: close\r\n\r\n");
  EXPECT_NE(r.statusLine, "HTTP/1.1 200 OK") << r.statusLine;
  EXPECT_EQ(request(server.port(), get("/metrics")).statusLine, "HTTP/1.1 200 OK");
}

// The case of issue 10 section 8: with the old one-thread endpoint, 10 half-sent requests delayed
// a scrape by 2 s each (21.8 s). Each now holds a thread of its own, and the scrape gets another.
TEST(MetricsServer, HalfSentRequestsDoNotDelayAScrape) {
  km::Server server("127.0.0.1:0", sampleRegistry());
  std::vector<int> slow;
  for (int i = 0; i < 10; ++i) {
    slow.push_back(connectTo(server.port()));
    sendAll(slow.back(), "GET /metrics HTTP/1.1\r\nHost: localhost\r\n");  // no blank line: never complete
  }
  std::this_thread::sleep_for(100ms);  // let the server take them all first
  auto start = std::chrono::steady_clock::now();
  Reply r = request(server.port(), get("/metrics"));
  auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.statusLine, "HTTP/1.1 200 OK");
  EXPECT_LT(waited, 1500ms) << "a scrape waited behind half-sent requests";
  for (int fd : slow) ::close(fd);
}

TEST(MetricsServer, SilentAndHalfSentClientsAreHungUpOn) {
  km::Server server("127.0.0.1:0", sampleRegistry());
  int silent = connectTo(server.port());  // connects and sends nothing
  int half = connectTo(server.port());
  sendAll(half, "GET /metr");
  auto start = std::chrono::steady_clock::now();
  std::string fromSilent = readToEof(silent);  // EOF when the server hangs up (the socket's own timeout is 10 s)
  std::string fromHalf = readToEof(half);
  auto waited = std::chrono::steady_clock::now() - start;
  ::close(silent);
  ::close(half);
  EXPECT_EQ(fromSilent, "");
  EXPECT_EQ(fromHalf.find("200 OK"), std::string::npos) << fromHalf;
  EXPECT_LT(waited, 5s) << "the 2 s timeouts did not end the connections";
}

TEST(MetricsServer, ClientResetDoesNotHurt) {
  km::Server server("127.0.0.1:0", sampleRegistry());
  for (int i = 0; i < 5; ++i) {
    int fd = connectTo(server.port());
    linger l{1, 0};  // close() sends RST
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    if (i % 2 == 0) sendAll(fd, "GET /metrics HTTP/1.1\r\n");
    ::close(fd);
  }
  EXPECT_EQ(request(server.port(), get("/metrics")).statusLine, "HTTP/1.1 200 OK");
}

TEST(MetricsServer, ManySequentialScrapes) {
  km::Server server("127.0.0.1:0", sampleRegistry());
  for (int i = 0; i < 200; ++i) ASSERT_EQ(request(server.port(), get("/metrics")).statusLine, "HTTP/1.1 200 OK");
}

TEST(MetricsServer, DestructorReturnsWithinTheTimeout) {
  auto server = std::make_unique<km::Server>("127.0.0.1:0", sampleRegistry());
  int idle = connectTo(server->port());
  std::this_thread::sleep_for(50ms);  // a pool thread is now waiting on this connection
  auto start = std::chrono::steady_clock::now();
  server.reset();
  // The pool's threads are joined; one held by a silent client ends at its 2 s timeout.
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3500ms);
  ::close(idle);
  // And with nobody connected, at once.
  server = std::make_unique<km::Server>("127.0.0.1:0", sampleRegistry());
  start = std::chrono::steady_clock::now();
  server.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 500ms);
}

TEST(MetricsServer, CannotListenThrowsRuntimeError) {
  km::Server first("127.0.0.1:0", sampleRegistry());
  std::string addr = "127.0.0.1:" + std::to_string(first.port());
  try {
    km::Server second(addr, sampleRegistry());
    ADD_FAILURE() << "a second server bound " << addr;
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("metrics: cannot listen on " + addr + ": ", 0), 0u) << e.what();
  }
  try {
    km::Server bad("nonsense", sampleRegistry());
    ADD_FAILURE() << "accepted 'nonsense'";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "metrics: cannot listen on nonsense: expected HOST:PORT, got 'nonsense'");
  }
  EXPECT_THROW(km::Server("192.0.2.1:0", sampleRegistry()), std::runtime_error);  // not a local address
}

TEST(MetricsServer, ServesOnIpv6Loopback) {
  std::unique_ptr<km::Server> server;
  try {
    server = std::make_unique<km::Server>("[::1]:0", sampleRegistry());
  } catch (const std::runtime_error& e) {
    GTEST_SKIP() << "no IPv6 loopback here: " << e.what();
  }
  Reply r = request(server->port(), get("/metrics"), AF_INET6);
  EXPECT_EQ(r.statusLine, "HTTP/1.1 200 OK");
  EXPECT_EQ(r.body, sampleRegistry().exposition());
}

// ---- promtool -------------------------------------------------------------------------------------

std::string findOnPath(const std::string& program) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return {};
  std::string p = path;
  std::size_t start = 0;
  while (start <= p.size()) {
    std::size_t end = p.find(':', start);
    if (end == std::string::npos) end = p.size();
    std::string dir = p.substr(start, end - start);
    if (!dir.empty()) {
      std::string candidate = dir + "/" + program;
      if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    start = end + 1;
  }
  return {};
}

TEST(MetricsPromtool, ExpositionPassesPromtoolCheckMetrics) {
  std::string promtool = findOnPath("promtool");
  if (promtool.empty()) GTEST_SKIP() << "promtool is not on PATH (Debian package 'prometheus' provides it)";

  km::Registry reg;
  reg.counter("kubeaccel_allocations_total", "Allocate calls answered.", {{"resource", "kubeaccel.io/coral-usb"}})
      .inc(3);
  reg.counter("kubeaccel_allocations_total", "Allocate calls answered.", {{"resource", "kubeaccel.io/hailo8"}});
  reg.counter("kubeaccel_restarts_total", "Restarts.").inc();
  reg.gauge("kubeaccel_devices", "Advertised devices by health.", {{"health", "Healthy"}, {"class", "a\"b\\c\nd"}})
      .set(2);
  reg.gauge("kubeaccel_queue_depth", "Queued requests.").set(-0.5);
  auto& lat = reg.histogram("kubeaccel_inference_duration_seconds", "Inference latency.", km::latencyBuckets(),
                            {{"model", "squeezenet"}});
  for (double v : {0.00001, 0.0003, 0.02, 0.7, 20.0}) lat.observe(v);
  auto& batch = reg.histogram("kubeaccel_batch_size", "Batch sizes.", km::batchSizeBuckets());
  for (double v : {1.0, 3.0, 64.0, 100.0}) batch.observe(v);
  std::string text = reg.exposition();

  auto file = std::filesystem::temp_directory_path() / ("metrics_test_" + std::to_string(::getpid()) + ".prom");
  {
    std::ofstream out(file);
    out << text;
  }
  std::string cmd = "'" + promtool + "' check metrics < '" + file.string() + "' 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buf[512];
  while (std::fgets(buf, sizeof buf, pipe) != nullptr) output += buf;
  int status = ::pclose(pipe);
  std::filesystem::remove(file);
  ASSERT_TRUE(WIFEXITED(status)) << output;
  EXPECT_EQ(WEXITSTATUS(status), 0) << "promtool check metrics:\n" << output << "\nexposition:\n" << text;
  EXPECT_EQ(output, "") << text;
}

TEST(MetricsPromtool, PromtoolCatchesABadExposition) {
  // Guards the test above: promtool must really complain about a counter without _total.
  std::string promtool = findOnPath("promtool");
  if (promtool.empty()) GTEST_SKIP() << "promtool is not on PATH (Debian package 'prometheus' provides it)";
  km::Registry reg;
  reg.counter("kubeaccel_requests", "Requests.").inc();
  auto file = std::filesystem::temp_directory_path() / ("metrics_test_bad_" + std::to_string(::getpid()) + ".prom");
  {
    std::ofstream out(file);
    out << reg.exposition();
  }
  std::string cmd = "'" + promtool + "' check metrics < '" + file.string() + "' >/dev/null 2>&1";
  int status = std::system(cmd.c_str());
  std::filesystem::remove(file);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_NE(WEXITSTATUS(status), 0);
}

}  // namespace
