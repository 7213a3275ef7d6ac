// kubeaccel-agent: owns agent-mode accelerators and serves inference on them,
// one Unix socket per allocated slot, in the KServe v2 protocol.
#include <spdlog/spdlog.h>

#include <charconv>
#include <limits>
#include <cstdio>
#include <iostream>

#include "agent_daemon.hpp"
#include "agent_metrics.hpp"
#include "metrics/metrics_flag.hpp"
#include "config/config_error.hpp"
#include "config/config_loader.hpp"
#include "util/args.hpp"
#include "util/event_loop.hpp"
#include "util/fd_limit.hpp"
#include "util/guarded_main.hpp"
#include "util/probe_socket.hpp"
#include "util/log.hpp"

namespace {

constexpr const char* kHelp = R"(Usage: kubeaccel-agent --models DIR [FLAGS]

Owns the accelerators of agent-mode classes and serves inference on them in the
KServe v2 / Open Inference Protocol (gRPC), on one Unix socket per slot:
<agent-dir>/<class>/<device-id>/s<k>/inference.sock. A slot's requests run on
its own device; slots share a device in turn.

Flags:
  --config FILE            catalog and modes, as for kubeaccel-plugin (default: built-in)
  --agent-dir DIR          where slot sockets live (default /var/lib/kubeaccel/agent)
  --models DIR             model repository: DIR/<name>/<version>/<model file> (model.onnx,
                           model.pt or model.pt2, as the backend takes) and an
                           optional DIR/<name>/config.json
  --backend-dir DIR        backend libraries, libkubeaccel_backend_<name>.so
                           (default /usr/lib/kubeaccel/backends)
  --max-message-bytes N    largest request or response (default 67108864, 64 MiB)
  --max-queued N           requests queued per slot before RESOURCE_EXHAUSTED (default 256)
  --max-connections N      connections open at once per slot; more are closed (default 64)
  --max-streams N          ModelStreamInfer streams open at once per slot (default 16)
  --max-stream-backlog N   a stream's requests in flight plus answers not yet read by
                           its client; beyond, the agent stops reading it (default 8)
  --max-inflight-bytes N   bytes of requests a slot may have taken and not yet answered;
                           beyond, RESOURCE_EXHAUSTED (default 268435456, 256 MiB)
  --max-regions N          shared-memory regions per slot (default 64)
  --max-region-bytes N     shared-memory bytes registered per slot (default 1073741824)
  --metrics-address A      serve Prometheus metrics on A (off by default)
  --log-level L            trace, debug, info, warn, error (default info)
  --probe                  ask the agent running for --agent-dir whether it is healthy
                           (every slot served answers a new connection); exit 0 if so
  --help, --version

Exit status: 0 after SIGTERM/SIGINT, 1 on a runtime failure, 2 on bad usage or config.
)";

long positive(const kubeaccel::Args& args, const std::string& flag, long fallback, long max) {
  auto v = args.get(flag);
  if (!v) return fallback;
  long n = 0;
  auto [ptr, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (ec != std::errc() || ptr != v->data() + v->size() || n < 1 || n > max)
    throw kubeaccel::UsageError("--" + flag + ": expected an integer from 1 to " + std::to_string(max) + ", got '" +
                                *v + "'");
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace kubeaccel;
  blockTerminationSignals();  // before any thread starts
  return guardedMain("kubeaccel-agent", [&]() -> int {
    Args args(argc, argv, 1,
              {"config", "agent-dir", "models", "backend-dir", "max-message-bytes", "max-queued", "max-connections", "max-streams",
               "max-stream-backlog", "max-inflight-bytes", "max-regions", "max-region-bytes", "metrics-address", "log-level"},
              {"help", "version", "probe"});
    if (args.has("help")) {
      std::cout << kHelp;
      return kExitOk;
    }
    if (args.has("version")) {
      std::cout << "kubeaccel-agent " << KUBEACCEL_VERSION << "\n";
      return kExitOk;
    }
    if (!args.positional().empty()) throw UsageError("unexpected argument '" + args.positional().front() + "'");
    if (!setupLogging("kubeaccel-agent", args.get("log-level", "info")))
      throw UsageError("--log-level: expected trace, debug, info, warn or error, got '" + args.get("log-level", "") + "'");
    if (args.has("probe")) {
      std::string why;
      int rc = probe(agentProbePath(args.get("agent-dir", agent::AgentOptions{}.agentDir)), &why);
      if (rc != 0) std::fprintf(stderr, "kubeaccel-agent: probe: %s\n", why.c_str());
      return rc;
    }
    if (!args.has("models")) throw UsageError("--models DIR is required");
    agent::AgentOptions opts;
    opts.agentDir = args.get("agent-dir", opts.agentDir);
    opts.modelsDir = *args.get("models");
    opts.backendDir = args.get("backend-dir", opts.backendDir);
    opts.maxMessageBytes = static_cast<int>(positive(args, "max-message-bytes", opts.maxMessageBytes, 1L << 30));
    opts.maxQueued = static_cast<size_t>(positive(args, "max-queued", static_cast<long>(opts.maxQueued), 1000000));
    opts.maxConnections =
        static_cast<size_t>(positive(args, "max-connections", static_cast<long>(opts.maxConnections), 1000000));
    opts.maxStreams = static_cast<size_t>(positive(args, "max-streams", static_cast<long>(opts.maxStreams), 100000));
    opts.maxStreamBacklog =
        static_cast<size_t>(positive(args, "max-stream-backlog", static_cast<long>(opts.maxStreamBacklog), 100000));
    opts.maxInflightBytes = static_cast<uint64_t>(positive(
        args, "max-inflight-bytes", static_cast<long>(opts.maxInflightBytes), std::numeric_limits<long>::max()));
    opts.maxRegions = static_cast<size_t>(positive(args, "max-regions", static_cast<long>(opts.maxRegions), 100000));
    opts.maxRegionBytes = static_cast<uint64_t>(
        positive(args, "max-region-bytes", static_cast<long>(opts.maxRegionBytes), std::numeric_limits<long>::max()));
    // A soft limit of 1024 (a common container default) is soon reached by
    // connections: take what the hard limit allows.
    FdLimit before;
    FdLimit now = raiseFdLimit(&before);
    spdlog::info("open-file limit: soft {} (was {}), hard {}", now.soft, before.soft, now.hard);
    agent::AgentMetrics metrics;
    auto metricsServer = metrics::serveMetricsFlag(args.get("metrics-address"), metrics.registry());
    if (metricsServer) {
      opts.observerFor = [&metrics](const std::string& r, const std::string& s) { return metrics.observerFor(r, s); };
      opts.reportDevice = [&metrics](const agent::DeviceReport& r, bool gone) { metrics.deviceReport(r, gone); };
    }
    Config config = loadConfig(args.get("config", ""));
    agent::AgentDaemon daemon(config, opts);
    return daemon.run();  // the server stops before the registry it reads goes
  });
}
