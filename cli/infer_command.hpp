#pragma once

namespace kubeaccel {

// `kubeaccel infer --socket unix://PATH --model NAME [--input FILE | --random] [--shm] [--json]`
int inferCommand(int argc, char** argv);

}  // namespace kubeaccel
