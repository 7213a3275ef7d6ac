#pragma once

namespace kubeaccel {

// `kubeaccel demo`: the main job on simulated accelerators, narrated.
int demoCommand(int argc, char** argv);

}  // namespace kubeaccel
