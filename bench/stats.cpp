#include "stats.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

namespace kubeaccel::bench {

Distribution distribution(std::vector<double> s) {
  Distribution d;
  d.n = s.size();
  if (s.empty()) return d;
  std::sort(s.begin(), s.end());
  auto rank = [&](double p) {
    size_t k = static_cast<size_t>(std::ceil(p * static_cast<double>(s.size())));
    return s[std::clamp<size_t>(k, 1, s.size()) - 1];
  };
  d.min = s.front();
  d.p50 = rank(0.50);
  d.p90 = rank(0.90);
  d.p99 = rank(0.99);
  d.max = s.back();
  d.mean = std::accumulate(s.begin(), s.end(), 0.0) / static_cast<double>(s.size());
  return d;
}

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::string describe(const Distribution& d, const std::string& unit, int digits) {
  auto f = [&](double v) { return fixed(v, digits) + " " + unit; };
  return "min " + f(d.min) + "  p50 " + f(d.p50) + "  p90 " + f(d.p90) + "  p99 " + f(d.p99) + "  max " + f(d.max) +
         "  mean " + f(d.mean) + "  (n=" + std::to_string(d.n) + ")";
}

}  // namespace kubeaccel::bench
