#include "util/fd_limit.hpp"

#include <sys/resource.h>

namespace kubeaccel {

FdLimit raiseFdLimit(FdLimit* before) {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return {};
  if (before) *before = {lim.rlim_cur, lim.rlim_max};
  if (lim.rlim_cur < lim.rlim_max) {
    rlimit raised = lim;
    raised.rlim_cur = lim.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) lim = raised;
  }
  return {lim.rlim_cur, lim.rlim_max};
}

}  // namespace kubeaccel
