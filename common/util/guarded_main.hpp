#pragma once
// The exit-status contract every binary keeps: 0 on success, 2 with a
// one-line reason on bad usage or config, 1 with a one-line reason otherwise.

#include <functional>

namespace kubeaccel {

int guardedMain(const char* program, const std::function<int()>& body);

}  // namespace kubeaccel
