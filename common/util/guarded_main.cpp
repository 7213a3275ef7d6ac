#include "util/guarded_main.hpp"

#include <cstdio>

#include "config/config_error.hpp"
#include "util/args.hpp"

namespace kubeaccel {

int guardedMain(const char* program, const std::function<int()>& body) {
  try {
    return body();
  } catch (const UsageError& e) {
    std::fprintf(stderr, "%s: %s\n", program, e.what());
    return kExitUsage;
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "%s: %s\n", program, e.what());
    return kExitUsage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", program, e.what());
    return kExitFailure;
  }
}

}  // namespace kubeaccel
