#pragma once

namespace kubeaccel {

// `kubeaccel models [--agent-dir DIR | --socket unix://PATH] [list | load NAME | unload NAME | stats [NAME]] [--json]`:
// the model repository through the agent's admin socket (root on the node,
// or `kubectl exec` into the agent's container).
int modelsCommand(int argc, char** argv);

}  // namespace kubeaccel
