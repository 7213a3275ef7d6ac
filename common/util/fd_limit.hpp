#pragma once
// The process's open-file limit. Containers often start with a soft limit of
// 1024 under a much higher hard limit; a daemon that serves many clients
// raises its soft limit to the hard one rather than run out of descriptors.

#include <string>

namespace kubeaccel {

struct FdLimit {
  unsigned long long soft = 0, hard = 0;
};

// Raises the soft RLIMIT_NOFILE to the hard limit. Returns the limits now in
// force; `before` (if given) gets them as they were. Never fails the caller:
// if the kernel refuses, the limits stay as they were.
FdLimit raiseFdLimit(FdLimit* before = nullptr);

}  // namespace kubeaccel
