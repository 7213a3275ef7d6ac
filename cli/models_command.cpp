#include "models_command.hpp"

#include <grpcpp/grpcpp.h>
#include <google/protobuf/util/json_util.h>

#include <chrono>
#include <iostream>
#include <string>

#include "inference/grpc_service.grpc.pb.h"
#include "util/agent_dir.hpp"
#include "util/args.hpp"

namespace kubeaccel {
namespace {

constexpr const char* kHelp = R"(Usage: kubeaccel models [FLAGS] [list | load NAME | unload NAME | stats [NAME]]

The agent's model repository, through its admin socket (<agent-dir>/admin.sock,
mode 0600: run as root on the node, or with kubectl exec in the agent's
container). A slot's socket refuses loads and unloads: they affect every pod
on the device.

  list          every model with its version and state (the default)
  load NAME     load (or reload) NAME on every device
  unload NAME   stop serving NAME on every device
  stats [NAME]  ModelStatistics summed over the node's devices

Flags:
  --agent-dir DIR      the agent's directory (default /var/lib/kubeaccel/agent)
  --socket unix://P    the admin socket itself (instead of --agent-dir)
  --json               the answer as JSON (the KServe v2 message)
  --timeout SECONDS    deadline (default 60)
)";

void print(const google::protobuf::Message& m, bool json) {
  std::string out;
  google::protobuf::util::JsonPrintOptions opts;
  opts.add_whitespace = !json;
  (void)google::protobuf::util::MessageToJsonString(m, &out, opts);
  std::cout << out << (json ? "\n" : "");
}

}  // namespace

int modelsCommand(int argc, char** argv) {
  Args args(argc, argv, 2, {"agent-dir", "socket", "timeout"}, {"json", "help"});
  if (args.has("help")) {
    std::cout << kHelp;
    return kExitOk;
  }
  const auto& pos = args.positional();
  std::string verb = pos.empty() ? "list" : pos[0];
  bool needsName = verb == "load" || verb == "unload";
  if (verb != "list" && !needsName && verb != "stats") throw UsageError("models: unknown action '" + verb + "'");
  if (needsName && pos.size() != 2) throw UsageError("models: " + verb + " takes one model NAME");
  if (pos.size() > (verb == "list" ? 1u : 2u)) throw UsageError("models: unexpected argument '" + pos.back() + "'");
  std::string socket = args.get("socket", "unix:" + adminSocketPath(args.get("agent-dir", "/var/lib/kubeaccel/agent")));
  long timeout = std::stol(args.get("timeout", "60"));

  auto stub = inference::GRPCInferenceService::NewStub(grpc::CreateChannel(socket, grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(timeout));
  grpc::Status s;
  bool json = args.has("json");
  if (verb == "list") {
    inference::RepositoryIndexRequest req;
    inference::RepositoryIndexResponse resp;
    s = stub->RepositoryIndex(&ctx, req, &resp);
    if (s.ok() && json) print(resp, true);
    if (s.ok() && !json)
      for (const auto& m : resp.models())
        std::cout << m.name() << "\t" << (m.version().empty() ? "-" : m.version()) << "\t" << m.state()
                  << (m.reason().empty() ? "" : "\t" + m.reason()) << "\n";
  } else if (verb == "load") {
    inference::RepositoryModelLoadRequest req;
    req.set_model_name(pos[1]);
    inference::RepositoryModelLoadResponse resp;
    s = stub->RepositoryModelLoad(&ctx, req, &resp);
    if (s.ok()) std::cout << "loaded " << pos[1] << "\n";
  } else if (verb == "unload") {
    inference::RepositoryModelUnloadRequest req;
    req.set_model_name(pos[1]);
    inference::RepositoryModelUnloadResponse resp;
    s = stub->RepositoryModelUnload(&ctx, req, &resp);
    if (s.ok()) std::cout << "unloaded " << pos[1] << "\n";
  } else {
    inference::ModelStatisticsRequest req;
    if (pos.size() == 2) req.set_name(pos[1]);
    inference::ModelStatisticsResponse resp;
    s = stub->ModelStatistics(&ctx, req, &resp);
    if (s.ok()) print(resp, json);
  }
  if (!s.ok()) {
    std::cerr << "kubeaccel: models " << verb << ": " << socket << ": " << s.error_message() << "\n";
    return kExitFailure;
  }
  return kExitOk;
}

}  // namespace kubeaccel
