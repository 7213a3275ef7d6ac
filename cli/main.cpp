// kubeaccel: the command line for the node's accelerators.
#include <cstdio>
#include <iostream>
#include <string>

#include "bench_command.hpp"
#include "config/config_error.hpp"
#include "demo_command.hpp"
#include "devices_command.hpp"
#include "infer_command.hpp"
#include "models_command.hpp"
#include "util/args.hpp"
#include "util/guarded_main.hpp"

namespace {

constexpr const char* kHelp = R"(Usage: kubeaccel COMMAND [FLAGS]

Commands:
  devices   what discovery sees on this node and how it would be advertised
  infer     one inference through a slot's socket (KServe v2 over gRPC)
  bench     load-test a model through a slot's socket: latency and images/s per batch size
  models    the model repository through the agent's admin socket: list, load,
            unload, statistics for the whole node
  demo      the whole flow on simulated accelerators: discovery, registration
            with a local kubelet stand-in, allocation of a slot to a pod,
            inference through the agent

Run 'kubeaccel COMMAND --help' for a command's flags.
Exit status: 0 on success, 1 on failure, 2 on bad usage or config.
)";

}  // namespace

int main(int argc, char** argv) {
  using namespace kubeaccel;
  std::string cmd = argc > 1 ? argv[1] : "";
  return guardedMain("kubeaccel", [&]() -> int {
    if (cmd == "devices") return devicesCommand(argc, argv);
    if (cmd == "demo") return demoCommand(argc, argv);
    if (cmd == "infer") return inferCommand(argc, argv);
    if (cmd == "bench") return benchCommand(argc, argv);
    if (cmd == "models") return modelsCommand(argc, argv);
    if (cmd == "--help" || cmd == "-h" || cmd == "help") {
      std::cout << kHelp;
      return kExitOk;
    }
    if (cmd == "--version") {
      std::cout << "kubeaccel " << KUBEACCEL_VERSION << "\n";
      return kExitOk;
    }
    throw UsageError(cmd.empty() ? "no command given (see --help)" : "unknown command '" + cmd + "' (see --help)");
  });
}
