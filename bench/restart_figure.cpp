// Figure 2: a kubelet restart (the stand-in stops, deletes every socket in
// device-plugins/ and serves a new kubelet.sock) until every resource has
// registered again and its new ListAndWatch stream delivered its first
// message. Two resources: coral-pcie and movidius-ncs2 (unbooted stick).
#include <algorithm>
#include <cstdio>
#include <stdexcept>
#include <thread>
#include <vector>

#include "figures.hpp"
#include "plugin_harness.hpp"
#include "stats.hpp"

namespace kubeaccel::bench {
namespace {

using Clock = std::chrono::steady_clock;
const std::vector<std::string> kResources = {"kubeaccel.io/coral-pcie", "kubeaccel.io/movidius-ncs2"};

}  // namespace

void restartFigure(const Options& o, Report& r) {
  std::printf("\n[2] kubelet restart -> registered again: %d restarts, 2 resources\n", o.restarts);
  testing::PluginHarness h;
  h.plug("coral-pcie.umockdev");
  h.plug("movidius-ncs2-unbooted.umockdev");
  h.startPlugin("");
  for (const auto& res : kResources)
    if (!h.kubelet().waitForRegistrations(res, 1, kSetupTimeout))
      throw std::runtime_error("restart: the plugin did not register " + res + "\n" + h.pluginLog());

  CsvFile csv(o.outDir + "/restart.csv",
              {"restart", "total_ms", "registered_ms", "restart_call_ms", "after_new_socket_ms", "ok"});
  std::vector<double> totals, registered, calls, afterSocket;
  int timeouts = 0;
  for (int i = 0; i < o.restarts; ++i) {
    Resources before = h.kubelet().resources();
    auto t0 = Clock::now();
    h.kubelet().restart();
    auto t1 = Clock::now();
    // Registered again, and the new stream's first message is in: a stream
    // that is open (the stand-in's streamOpen flag outlives a restart).
    bool ok = h.kubelet().waitFor(
        [&](const Resources& rs) {
          for (const auto& res : kResources) {
            auto it = rs.find(res);
            const auto& b = before.at(res);
            if (it == rs.end() || it->second.registrations <= b.registrations || it->second.updates <= b.updates ||
                it->second.lastUpdate < it->second.lastRegistered)
              return false;
          }
          return true;
        },
        std::chrono::seconds(10));
    Resources after = h.kubelet().resources();
    Clock::time_point lastStream = t0, lastRegistration = t0;
    for (const auto& res : kResources) {
      lastStream = std::max(lastStream, after[res].lastUpdate);
      lastRegistration = std::max(lastRegistration, after[res].lastRegistered);
    }
    if (!ok) lastStream = Clock::now();
    csv << std::vector<std::string>{std::to_string(i), fixed(millisBetween(t0, lastStream), 4),
                                    fixed(millisBetween(t0, lastRegistration), 4), fixed(millisBetween(t0, t1), 4),
                                    fixed(millisBetween(t1, lastStream), 4), ok ? "1" : "0"};
    if (!ok) {
      ++timeouts;
      continue;
    }
    totals.push_back(millisBetween(t0, lastStream));
    registered.push_back(millisBetween(t0, lastRegistration));
    calls.push_back(millisBetween(t0, t1));
    afterSocket.push_back(millisBetween(t1, lastStream));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // let the plugin go idle again
  }

  // What the plugin said about failed registrations (its retry backoff starts at 100 ms).
  std::string log = h.pluginLog();
  int retries = 0;
  std::string firstRetry;
  for (size_t pos = 0; (pos = log.find("retrying in", pos)) != std::string::npos; ++pos) {
    if (retries++ == 0) {
      size_t begin = log.rfind('\n', pos);
      begin = begin == std::string::npos ? 0 : begin + 1;
      firstRetry = log.substr(begin, log.find('\n', pos) - begin);
    }
  }

  auto d = distribution(totals);
  std::printf("    restart() -> all registered, streams open  %s\n", describe(d, "ms").c_str());
  std::printf("    restart() -> last Register received        %s\n", describe(distribution(registered), "ms").c_str());
  std::printf("    of which the stand-in's restart() call     %s\n", describe(distribution(calls), "ms").c_str());
  std::printf("    new kubelet.sock -> streams open           %s\n", describe(distribution(afterSocket), "ms").c_str());
  std::printf("    failed registrations the plugin retried: %d%s%s\n", retries, retries ? ", the first: " : "",
              firstRetry.c_str());
  std::printf("    samples: %s\n", csv.path().c_str());

  r.target("kubelet restart -> registered p50", fixed(d.p50, 2), "ms", "< 100", d.n > 0 && d.p50 < 100);
  r.target("kubelet restart -> registered max", fixed(d.max, 2), "ms", "< 100", d.n > 0 && d.max < 100);
  r.info("new kubelet.sock -> registered p50", fixed(distribution(afterSocket).p50, 2), "ms");
  r.info("registrations retried by the plugin", std::to_string(retries), "count");
  if (retries > 0)
    r.finding("restart: " + std::to_string(retries) + " Register call(s) failed and waited for the retry backoff; " +
              "the first: " + firstRetry);
  r.target("kubelet restart timeouts (10 s)", std::to_string(timeouts), "count", "0", timeouts == 0);
}

}  // namespace kubeaccel::bench
