// kubeaccel-plugin: the kubelet device plugin for the node's accelerators.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <iostream>

#include "config/config_error.hpp"
#include "config/config_loader.hpp"
#include "metrics/metrics_flag.hpp"
#include "plugin_daemon.hpp"
#include "plugin_metrics.hpp"
#include "util/args.hpp"
#include "util/event_loop.hpp"
#include "util/guarded_main.hpp"
#include "util/probe_socket.hpp"
#include "util/log.hpp"

namespace {

constexpr const char* kHelp = R"(Usage: kubeaccel-plugin [FLAGS]

Kubelet device plugin: discovers the node's AI accelerators with libudev,
advertises them as kubeaccel.io/<class> extended resources (one DevicePlugin
server per class) and answers the kubelet's Allocate.

Flags:
  --config FILE        catalog and modes (default: the built-in catalog)
  --kubelet-dir DIR    kubelet root; serves and registers in DIR/device-plugins
                       (default /var/lib/kubelet)
  --agent-dir DIR      where kubeaccel-agent keeps slot sockets; Allocate mounts
                       DIR/<class>/<device-id>/<slot> (default /var/lib/kubeaccel/agent)
  --cdi-dir DIR        where CDI specs go (default /var/run/cdi)
  --metrics-address A  serve Prometheus metrics on A (off by default)
  --log-level L        trace, debug, info, warn, error (default info)
  --probe              ask the plugin running with --agent-dir whether it is healthy
                       (serving and registered); exit 0 if so (exec liveness probe;
                       it answers on DIR/plugin-probe.sock)
  --help, --version

Exit status: 0 after SIGTERM/SIGINT, 1 on a runtime failure, 2 on bad usage or config.
)";

}  // namespace

int main(int argc, char** argv) {
  using namespace kubeaccel;
  blockTerminationSignals();  // before any thread starts
  return guardedMain("kubeaccel-plugin", [&]() -> int {
    Args args(argc, argv, 1, {"config", "kubelet-dir", "agent-dir", "cdi-dir", "metrics-address", "log-level"},
              {"help", "version", "probe"});
    if (args.has("help")) {
      std::cout << kHelp;
      return kExitOk;
    }
    if (args.has("version")) {
      std::cout << "kubeaccel-plugin " << KUBEACCEL_VERSION << "\n";
      return kExitOk;
    }
    if (!args.positional().empty()) throw UsageError("unexpected argument '" + args.positional().front() + "'");
    if (args.has("probe")) {
      std::string why;
      int rc = probe(pluginProbePath(args.get("agent-dir", PluginOptions{}.agentDir)), &why);
      if (rc != 0) std::fprintf(stderr, "kubeaccel-plugin: probe: %s\n", why.c_str());
      return rc;
    }
    if (!setupLogging("kubeaccel-plugin", args.get("log-level", "info")))
      throw UsageError("--log-level: expected trace, debug, info, warn or error, got '" + args.get("log-level", "") + "'");
    PluginOptions opts;
    PluginMetrics metrics;
    auto metricsServer = metrics::serveMetricsFlag(args.get("metrics-address"), metrics.registry());
    if (metricsServer) opts.metrics = &metrics;
    Config config = loadConfig(args.get("config", ""));
    opts.kubeletDir = args.get("kubelet-dir", opts.kubeletDir);
    opts.agentDir = args.get("agent-dir", opts.agentDir);
    opts.cdiDir = args.get("cdi-dir", opts.cdiDir);
    PluginDaemon daemon(config, opts);
    return daemon.run();  // the server stops before the registry it reads goes
  });
}
