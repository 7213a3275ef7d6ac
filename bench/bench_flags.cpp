#include "bench_flags.hpp"

#include <cstdio>
#include <cstdlib>

namespace kubeaccel::bench {

int positiveInt(const Args& args, const std::string& flag, int fallback) {
  auto v = args.get(flag);
  if (!v) return fallback;
  char* end = nullptr;
  long n = std::strtol(v->c_str(), &end, 10);
  if (v->empty() || *end || n < 1 || n > 1000000)
    throw UsageError("--" + flag + ": expected a positive integer, got '" + *v + "'");
  return static_cast<int>(n);
}

double positiveNumber(const Args& args, const std::string& flag, double fallback) {
  auto v = args.get(flag);
  if (!v) return fallback;
  char* end = nullptr;
  double x = std::strtod(v->c_str(), &end);
  if (v->empty() || *end || !(x > 0)) throw UsageError("--" + flag + ": expected a positive number, got '" + *v + "'");
  return x;
}

int benchMain(const char* name, const std::function<bool()>& parse, const std::function<int()>& run) {
  try {
    if (!parse()) return 0;
  } catch (const std::exception& e) {  // UsageError, or Args' own refusal
    std::fprintf(stderr, "%s: %s\n", name, e.what());
    return 2;
  }
  try {
    return run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", name, e.what());
    return 1;
  }
}

}  // namespace kubeaccel::bench
